import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import type {
  Appointment,
  BundleEntry,
  CarePlan,
  Coding,
  CommunicationRequest,
  Patient,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { FhirClient, ifMatchFor, includedOf, matchesOf, searchWhole, updateEntry } from '@kc/fhir';
import {
  appointmentPatient,
  bookingFor,
  carePlanReferenceOf,
  infusionCodesOf,
  infusionDefinitionFor,
  plannedReminders,
  reminderChanges,
  reminderRulesForTask,
  revokedReminder,
  unbookedSession,
} from '@kc/followups';
import { linkedRecordsOf, PlanDefinitions, reminderEntries, remindersAboutTask } from '@kc/nest-core';
import { clinicPeriod, DECISION_KEY_SYSTEM, decisionKey, ProtocolCatalog, protocolWindowOf } from '@kc/protocols';
import { changeProvenance, THIS_SERVICE, transition } from '@kc/task-states';

export type BookingOutcome =
  { result: 'booked' | 'cancelled'; task: string; reminders: number } | { result: 'skipped'; why: string };

/**
 * An appointment the clinic booked in its scheduling system (an EHR's Appointment, notified or polled) books the
 * approved session it is for (bookingFor): the session's due window becomes the appointment's start and end, as a
 * reschedule to that slot would make it, and its reminders move with it (the fasting one six hours before the
 * appointment, not before the day), in one transaction with If-Match on the Task and each reminder and a Provenance
 * whose author is this service, naming the appointment. A notification again, the poll or a retry finds it booked
 * already and writes nothing. No patient data in logs: ids and reasons only.
 */
@Injectable()
export class AppointmentBookings {
  private readonly logger = new Logger(AppointmentBookings.name);

  /** What an appointment for a session says it is for (serviceType): the catalog's infusion codes. */
  private readonly catalogSessionCodes: Coding[];

  constructor(
    private readonly fhir: FhirClient,
    private readonly protocols: PlanDefinitions,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
    catalog: ProtocolCatalog,
  ) {
    this.catalogSessionCodes = infusionCodesOf(catalog);
  }

  async handle(appointmentId: string, now = new Date()): Promise<BookingOutcome> {
    const appointment = await this.appointmentOrDeleted(appointmentId);
    if (!appointment) return this.skipped(appointmentId, 'no such Appointment');
    const patient = appointmentPatient(appointment);
    if (!patient) return this.skipped(appointmentId, 'it names no patient');
    // The person's other records (a merge: the plan may be under the record merged away; since session 49): one read
    // of the patient's record, one search a step more only for a record that links others.
    const { linked } = await linkedRecordsOf(
      this.fhir,
      await this.fhir.readIfExists<Patient>('Patient', patient.slice('Patient/'.length)),
    );
    // The patient's approved Tasks, with their plans (the reminder rules are the plan's protocol's).
    const found = await searchWhole(this.fhir, 'Task', {
      patient: [patient, ...linked].join(','),
      status: 'ready',
      _include: 'Task:based-on',
      _count: 200,
    });
    const sessionCodes = await this.sessionCodesOf(includedOf<Resource>(found));
    const booking = bookingFor(appointment, matchesOf<Task>(found), sessionCodes, this.config.clinicTimeZone, linked);
    if ('none' in booking) return this.skipped(appointmentId, booking.none);
    const task = 'task' in booking ? booking.task : booking.cancelled;
    const carePlan = includedOf<Resource>(found).find(
      (r): r is CarePlan => `${r.resourceType}/${r.id}` === carePlanReferenceOf(task),
    );
    if ('cancelled' in booking) {
      // The session is at no time now: its reminders must not go out, and the clinic is to book it again.
      const active = (await this.remindersOf(task, carePlan)).filter((r) => r.status === 'active');
      await this.write(task, unbookedSession(task, booking.why), {
        reminders: active.map((r) => updateEntry(revokedReminder(r, booking.why), r.meta?.versionId)),
        activity: 'unbook',
        reason: booking.why,
        now,
      });
      this.logger.log({
        msg: 'session unbooked: its appointment was cancelled',
        appointment: appointment.id,
        task: task.id,
      });
      return { result: 'cancelled', task: `Task/${task.id}`, reminders: active.length };
    }
    const { window } = booking;
    const booked = transition(task, { event: 'reschedule', now, window });
    const reminders = await this.reminderWrites({ ...booked, id: task.id! }, carePlan, now);
    await this.write(task, booked, {
      reminders,
      activity: 'book',
      reason: `Booked in the scheduling system: Appointment/${appointment.id}, ${clinicPeriod(window, this.config.clinicTimeZone)}`,
      now,
    });
    this.logger.log({ msg: 'session booked from an appointment', appointment: appointment.id, task: task.id });
    return { result: 'booked', task: `Task/${task.id}`, reminders: reminders.length };
  }

  /**
   * A session just approved: the first appointment the scheduling system booked for the patient within its protocol
   * window (booked while the session awaited approval, when it could not be booked) books it now, as its
   * notification would have.
   */
  async forApprovedSession(taskId: string): Promise<BookingOutcome> {
    const task = await this.fhir.readIfExists<Task>('Task', taskId);
    const allowed = task && protocolWindowOf(task);
    if (!task?.for?.reference || !allowed?.start || !allowed.end)
      return { result: 'skipped', why: 'no such session, or it has no protocol window' };
    const [appointment] = await this.fhir.searchAll<Appointment>('Appointment', {
      patient: task.for.reference,
      date: [`ge${allowed.start}`, `le${allowed.end}`],
      status: 'booked,arrived,checked-in',
      _sort: 'date',
      _count: 20,
    });
    if (!appointment?.id) return { result: 'skipped', why: 'no appointment booked in its window' };
    return this.handle(appointment.id);
  }

  /**
   * The Task's change and its reminders' in one transaction (If-Match on each), with a Provenance whose author is this
   * service. A conflict (a clinician deciding on the Task meanwhile) fails the job, whose retry reads it again.
   */
  private async write(
    task: Task,
    changed: Task,
    change: { reminders: (BundleEntry & { fullUrl?: string })[]; activity: string; reason: string; now: Date },
  ): Promise<void> {
    const { reminders, activity, reason, now } = change;
    const decidedOn = decisionKey(`Task/${task.id}`, task.meta!.versionId!);
    await this.fhir.transaction([
      {
        resource: changed,
        request: { method: 'PUT', url: `Task/${task.id}`, ifMatch: ifMatchFor(task.meta!.versionId!) },
      },
      ...reminders,
      {
        resource: {
          ...changeProvenance({
            targets: [
              { reference: `Task/${task.id}` },
              ...reminders.map((r) => ({ reference: r.fullUrl ?? r.request!.url })),
            ],
            revisionOf: { reference: decidedOn },
            who: THIS_SERVICE,
            activity,
            now,
            reason,
          }),
          // As the clinic's own decisions are keyed: the patient view finds it by the version it changed.
          meta: { tag: [{ system: DECISION_KEY_SYSTEM, code: decidedOn }] },
        },
        request: { method: 'POST', url: 'Provenance' },
      },
    ]);
  }

  /** The reminders on record about the Task. */
  private remindersOf(task: Task, carePlan: CarePlan | undefined): Promise<CommunicationRequest[]> {
    return carePlan?.id ? remindersAboutTask(this.fhir, carePlan.id, task.id!) : Promise.resolve([]);
  }

  /** The Task's reminders timed from its new window: those on record moved (If-Match), any missing created. */
  private async reminderWrites(
    task: Task & { id: string },
    carePlan: CarePlan | undefined,
    now: Date,
  ): Promise<(BundleEntry & { fullUrl?: string })[]> {
    const protocol = carePlan && (await this.protocols.ofCarePlan(carePlan));
    const rules = reminderRulesForTask(task, protocol);
    if (!rules.length || !carePlan?.id) return [];
    const existing = await this.remindersOf(task, carePlan);
    return reminderEntries(reminderChanges(plannedReminders(task, rules, now, this.config.clinicTimeZone), existing));
  }

  /**
   * The infusion codes an appointment for one of the patient's sessions may carry: the catalog's, and those of the
   * protocols the patient's plans follow (an EHR's may code its infusion otherwise: its appointments are its sessions'
   * too). A plan whose protocol is not found adds none.
   */
  private async sessionCodesOf(included: Resource[]): Promise<Coding[]> {
    const codes = new Map(this.catalogSessionCodes.map((c) => [`${c.system}|${c.code}`, c]));
    for (const carePlan of included.filter((r): r is CarePlan => r.resourceType === 'CarePlan')) {
      const protocol = await this.protocols.ofCarePlan(carePlan);
      if (protocol)
        for (const code of infusionDefinitionFor(protocol.plan, protocol.definitions).codes)
          codes.set(`${code.system}|${code.code}`, code);
    }
    return [...codes.values()];
  }

  /**
   * The appointment; one deleted in the scheduling system (notified by id), its last version as cancelled: the slot a
   * session was booked at is gone either way, and its reminders must not go out.
   */
  private async appointmentOrDeleted(appointmentId: string): Promise<Appointment | undefined> {
    const found = await this.fhir.readEvenIfDeleted<Appointment>('Appointment', appointmentId);
    return found && (found.deleted ? { ...found.resource, status: 'cancelled' } : found.resource);
  }

  private skipped(appointmentId: string, why: string): BookingOutcome {
    this.logger.log({ msg: 'appointment booked no session', appointment: appointmentId, why });
    return { result: 'skipped', why };
  }
}
