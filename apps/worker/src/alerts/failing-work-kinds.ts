import type {
  Appointment,
  Bundle,
  CarePlan,
  Communication,
  Procedure,
  QuestionnaireResponse,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { batchResult, FhirClient, getEntry, includedOf, matchesOf } from '@kc/fhir';
import { appointmentPatient } from '@kc/followups';
import { stateOf } from '@kc/task-states';
import {
  appointmentBookedNoticeKey,
  appointmentBookedNoticeMessage,
  appointmentNotBookedAlertKey,
  appointmentNotBookedAlertMessage,
  appointmentNotBookedAlertRecord,
  givesUpItsSlot,
  answersNotRecordedAlertKey,
  answersNotRecordedAlertMessage,
  answersNotRecordedAlertRecord,
  answersRecordedNoticeKey,
  answersRecordedNoticeMessage,
  infusionFollowedUpNoticeKey,
  infusionFollowedUpNoticeMessage,
  infusionNotFollowedUpAlertKey,
  infusionNotFollowedUpAlertMessage,
  infusionNotFollowedUpAlertRecord,
  type AlertSent,
  type ClinicAlertChannel,
  type ClinicAlertContext,
  type ClinicAlertMessage,
  type FollowUpRan,
} from '@kc/protocols';
import {
  appointmentBookedJobId,
  checkAnsweredElsewhereJobId,
  checkDoneElsewhereJobId,
  infusionJobId,
  JOBS,
  QUEUES,
} from '@kc/queue';
import { ignoredWhy } from '../followups/follow-up.metrics';

/** The resources a failing job is about, as read now (absent: gone from the server), with the plan each is under. */
export interface WorkAbout {
  resource?: Resource;
  carePlan?: CarePlan;
  /** For work whose completed jobs are not kept: whether the FHIR server shows it done (the notice's words). */
  done?: boolean;
}

/**
 * A kind of work whose dead letters leave a gap no clinician would notice, told to the clinic (FailingWorkAlerts):
 * which jobs are its, how what they are about is read, and the alert and notice (once the job has run) it sends.
 */
export interface FailingWorkKind {
  kind: 'infusion-not-followed-up' | 'answers-not-recorded' | 'appointment-not-booked';
  /** Its jobs' queue and names. */
  queue: string;
  jobNames: string[];
  /**
   * Whether its completed jobs are kept (with what they returned): when not, a job gone is work run, and `read`
   * says from the FHIR server whether it was done.
   */
  completedJobsKept: boolean;
  /** The id of the job about `about` (`Procedure/<id>`...): one per resource. */
  jobIdOf(about: string): string;
  /** What each is about, read now (and, for those whose job `ran`, whether done): one request. */
  read(fhir: FhirClient, abouts: string[], ran: Set<string>): Promise<Map<string, WorkAbout>>;
  alertKey(about: string, channel: ClinicAlertChannel): string;
  noticeKey(about: string, channel: ClinicAlertChannel): string;
  alertMessage(about: string, read: WorkAbout, failingSince: number, context: ClinicAlertContext): ClinicAlertMessage;
  noticeMessage(about: string, read: WorkAbout, returned: unknown, context: ClinicAlertContext): ClinicAlertMessage;
  record(about: string, read: WorkAbout, message: ClinicAlertMessage, sent: AlertSent): Communication;
}

/** An infusion's follow-up: its post-infusion check and the plan's next session not planned (a Procedure). */
export const INFUSION_FOLLOW_UPS: FailingWorkKind = {
  kind: 'infusion-not-followed-up',
  queue: QUEUES.followups,
  jobNames: [JOBS.infusionCompleted],
  completedJobsKept: true,
  jobIdOf: (about) => infusionJobId(idOf(about)),
  async read(fhir, abouts) {
    // The infusions with their plans: one search.
    const found = await fhir.search<Procedure>('Procedure', {
      _id: abouts.map(idOf).join(','),
      _include: 'Procedure:based-on',
      _count: String(abouts.length),
    });
    const plans = new Map(includedOf<CarePlan>(found, 'CarePlan').map((c) => [`CarePlan/${c.id}`, c]));
    return new Map(
      matchesOf<Procedure>(found).map((procedure) => [
        `Procedure/${procedure.id}`,
        {
          resource: procedure,
          carePlan: (procedure.basedOn ?? []).map((b) => plans.get(b.reference ?? '')).find(Boolean),
        },
      ]),
    );
  },
  alertKey: (about, channel) => infusionNotFollowedUpAlertKey(infusion(about), channel),
  noticeKey: (about, channel) => infusionFollowedUpNoticeKey(infusion(about), channel),
  alertMessage: (_about, read, failingSince, context) =>
    infusionNotFollowedUpAlertMessage(
      {
        procedure: read.resource as Procedure & { id: string },
        carePlan: read.carePlan as (CarePlan & { id: string }) | undefined,
        failingSince,
      },
      context,
    ),
  noticeMessage: (about, read, returned, context) =>
    infusionFollowedUpNoticeMessage({ procedure: procedureOf(about, read) }, ranAs(returned), context),
  record: (about, read, message, sent) =>
    infusionNotFollowedUpAlertRecord({ procedure: procedureOf(about, read), carePlan: read.carePlan }, message, sent),
};

/**
 * A patient's answers to a check not recorded: a portal's, written without the Task (their QuestionnaireResponse), or
 * those of a check the EHR completed itself (its Task). The effects they report go to no clinician until then.
 */
export const CHECK_ANSWERS: FailingWorkKind = {
  kind: 'answers-not-recorded',
  queue: QUEUES.maintenance,
  jobNames: [JOBS.checkAnsweredElsewhere, JOBS.checkDoneElsewhere],
  completedJobsKept: false,
  jobIdOf: (about) =>
    about.startsWith('Task/') ? checkDoneElsewhereJobId(idOf(about)) : checkAnsweredElsewhereJobId(idOf(about)),
  async read(fhir, abouts, ran) {
    // Responses and Tasks both, and for answers whose job ran the scores extracted from them: one batch.
    const derived = abouts.filter((about) => ran.has(about) && about.startsWith('QuestionnaireResponse/'));
    const read = await fhir.batch([
      ...abouts.map((about) => getEntry(about)),
      ...derived.map((about) => getEntry('Observation', { 'derived-from': about, _count: 1 })),
    ]);
    const entries = read.entry ?? [];
    const scored = new Set(derived.filter((_, i) => matchesOf(entries[abouts.length + i]?.resource as Bundle).length));
    return new Map(
      abouts.map((about, i) => {
        const resource = batchResult<QuestionnaireResponse | Task>(entries[i], about);
        // Recorded: the check the EHR closed marked done here, or scores taken from the portal's answers.
        const done = resource?.resourceType === 'Task' ? stateOf(resource) === 'done' : scored.has(about);
        return [about, { resource, done }];
      }),
    );
  },
  alertKey: (about, channel) => answersNotRecordedAlertKey({ about }, channel),
  noticeKey: (about, channel) => answersRecordedNoticeKey({ about }, channel),
  alertMessage: (about, read, failingSince, context) =>
    answersNotRecordedAlertMessage({ about, answers: answersOf(read), failingSince }, context),
  noticeMessage: (_about, read, _returned, context) =>
    answersRecordedNoticeMessage({ answers: answersOf(read) }, { recorded: read.done === true }, context),
  record: (about, read, message, sent) =>
    answersNotRecordedAlertRecord({ about, answers: answersOf(read) }, message, sent),
};

/**
 * An appointment the scheduling system booked or cancelled for an approved session, not taken: the session's
 * reminders stay timed from its protocol window (the fasting one not six hours before the appointment), or go out for
 * a session cancelled there. Nothing on the page shows it (since session 62).
 */
export const APPOINTMENT_BOOKINGS: FailingWorkKind = {
  kind: 'appointment-not-booked',
  queue: QUEUES.maintenance,
  jobNames: [JOBS.appointmentBooked],
  completedJobsKept: false,
  jobIdOf: (about) => appointmentBookedJobId(idOf(about)),
  async read(fhir, abouts, ran) {
    // The appointments (one batch), and for those whose job ran, their patients' approved sessions (one batch more).
    const answer = await fhir.batch(abouts.map((about) => getEntry(about)));
    const appointments = abouts.map((about, i) => batchResult<Appointment>(answer.entry?.[i], 'Appointment'));
    const looked = abouts.flatMap((about, i) => {
      const appointment = appointments[i];
      const patient = appointment && appointmentPatient(appointment);
      return ran.has(about) && patient ? [{ about, appointment, patient }] : [];
    });
    const sessions = looked.length
      ? await fhir.batch(looked.map((l) => getEntry('Task', { patient: l.patient, status: 'ready', _count: 200 })))
      : undefined;
    const taken = new Set(
      looked
        .filter(({ appointment }, i) => {
          const atItsTime = matchesOf<Task>(sessions?.entry?.[i]?.resource as Bundle).some((t) =>
            sameTimes(t.restriction?.period, appointment),
          );
          // Booked: a session at its time; cancelled: none at its time any more.
          return givesUpItsSlot(appointment) ? !atItsTime : atItsTime;
        })
        .map((l) => l.about),
    );
    return new Map(abouts.map((about, i) => [about, { resource: appointments[i], done: taken.has(about) }]));
  },
  alertKey: (about, channel) => appointmentNotBookedAlertKey(appointmentAbout(about), channel),
  noticeKey: (about, channel) => appointmentBookedNoticeKey(appointmentAbout(about), channel),
  alertMessage: (about, read, failingSince, context) =>
    appointmentNotBookedAlertMessage({ appointment: appointmentOf(about, read), failingSince }, context),
  noticeMessage: (about, read, _returned, context) =>
    appointmentBookedNoticeMessage({ appointment: appointmentOf(about, read) }, { taken: read.done === true }, context),
  record: (about, read, message, sent) =>
    appointmentNotBookedAlertRecord({ appointment: appointmentOf(about, read) }, message, sent),
};

export const FAILING_WORK: readonly FailingWorkKind[] = [INFUSION_FOLLOW_UPS, CHECK_ANSWERS, APPOINTMENT_BOOKINGS];

/** How the follow-up job ended, in the notice's words (its returned outcome; ignoredWhy's bounded reasons). */
export function ranAs(returned: unknown): FollowUpRan {
  const outcome = returned as { status?: string; reason?: string } | null | undefined;
  if (outcome?.status !== 'ignored') return { planned: true };
  return { planned: false, why: IGNORED_IN_WORDS[ignoredWhy(outcome.reason ?? '')] ?? 'it is not followed up' };
}

/** Why an infusion is not followed up, in a clinician's words, by ignoredWhy's label (no ids: this goes by email). */
const IGNORED_IN_WORDS: Record<string, string> = {
  'plan-completed': 'its care plan is completed',
  'plan-revoked': 'its care plan was stopped',
  'plan-entered-in-error': 'its care plan was recorded in error',
  'plan-not-found': 'its care plan is not found on the FHIR server',
  'procedure-not-found': 'the infusion is no longer on record',
  'charted-twice': 'it was charted twice, and its other record was followed up',
  'no-plan': "it names none of the service's care plans, and a clinician is asked to link it",
  'not-an-infusion': 'it is not recorded as an infusion a protocol follows up',
};

function idOf(about: string): string {
  return about.split('/')[1];
}

function infusion(about: string): { procedure: { id: string } } {
  return { procedure: { id: idOf(about) } };
}

/** The infusion as read, or its id alone when it is gone from the server (the notice then names no day). */
function procedureOf(about: string, read: WorkAbout): Partial<Procedure> {
  return (read.resource as Procedure | undefined) ?? { id: idOf(about) };
}

function answersOf(read: WorkAbout): QuestionnaireResponse | Task | undefined {
  const r = read.resource;
  return r?.resourceType === 'QuestionnaireResponse' || r?.resourceType === 'Task' ? r : undefined;
}

function appointmentAbout(about: string): { appointment: { id: string } } {
  return { appointment: { id: idOf(about) } };
}

/** The appointment as read, or its id alone when it is gone from the server (the notice then names no time). */
function appointmentOf(about: string, read: WorkAbout): Partial<Appointment> & { id: string } {
  const appointment = read.resource?.resourceType === 'Appointment' ? read.resource : undefined;
  return { ...appointment, id: idOf(about) };
}

/** A session's window at the appointment's start and end (to the millisecond: as the booking writes them). */
function sameTimes(window: { start?: string; end?: string } | undefined, appointment: Appointment): boolean {
  return (
    Date.parse(window?.start ?? '') === Date.parse(appointment.start ?? '') &&
    Date.parse(window?.end ?? '') === Date.parse(appointment.end ?? '')
  );
}
