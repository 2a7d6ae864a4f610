import { Injectable } from '@nestjs/common';
import type { Appointment, Bundle, Coding, DetectedIssue, Task } from '@medplum/fhirtypes';
import { badRequest } from '@kc/common';
import { bookingAdvice, forAnotherService, infusionCodesOf, type BookingAdvice } from '@kc/followups';
import { clinicDateTime, clinicDays, ProtocolCatalog, UTC_ZONE, uuidFromKey } from '@kc/protocols';
import {
  codeDisplays,
  contraindicationCards,
  links,
  mergedRecordsUnreadCards,
  sortCards,
  summary,
  taskName,
  type CardOptions,
} from './cards';
import type { Card, CdsRequest, CdsResponse, CdsServiceDefinition } from './cds-types';
import {
  checkPatientId,
  CONTRAINDICATIONS_QUERY,
  PATIENT_QUERY,
  PrefetchResolver,
  openTasksQuery,
  prefetchTemplates,
  resourcesIn,
  type PrefetchQuery,
} from './prefetch';

export const APPOINTMENT_BOOK_QUERIES: PrefetchQuery[] = [
  PATIENT_QUERY,
  openTasksQuery('sessions'),
  CONTRAINDICATIONS_QUERY,
];

/**
 * appointment-book: as the EHR books an appointment, whether it is a ketamine session that may be given then. Judged by
 * its time against the patient's open sessions (bookingAdvice): one awaiting approval (warning: approve it first), one
 * held for a contraindication (critical), a time outside every session's protocol window (warning), with the
 * unresolved contraindications on record when it is a session's time. An approved session at its time says nothing:
 * once booked, the session and its reminders take the appointment's time (AppointmentBookings).
 */
@Injectable()
export class AppointmentBookService {
  readonly definition: CdsServiceDefinition = {
    hook: 'appointment-book',
    id: 'ketamine-session-booking',
    title: 'Ketamine infusion session booking',
    description:
      'Warns when an appointment being booked is a ketamine session that is not approved yet, held for a ' +
      "contraindication, or outside the protocol's window for the patient's sessions.",
    prefetch: prefetchTemplates(APPOINTMENT_BOOK_QUERIES),
  };

  private readonly displays: Record<string, string>;
  /** What an appointment for a session says it is for (serviceType): the protocols' infusion codes. */
  private readonly sessionCodes: Coding[];

  constructor(
    private readonly prefetch: PrefetchResolver,
    private readonly catalog: ProtocolCatalog,
  ) {
    this.displays = codeDisplays(catalog.resources);
    this.sessionCodes = infusionCodesOf(catalog);
  }

  async call(
    request: CdsRequest,
    options: Omit<CardOptions, 'displays'>,
    budget: AbortSignal,
  ): Promise<CdsResponse & { counts: { prefetched: number; fetched: number }; patientsRead: string[] }> {
    const patientId = checkPatientId(request.context?.patientId);
    const sent = request.context.appointments as Bundle | undefined;
    if (sent?.resourceType !== 'Bundle')
      throw badRequest('context.appointments must be a Bundle of the Appointments being booked', [
        'context.appointments',
      ]);
    const appointments = resourcesIn<Appointment>(request.context.appointments as Bundle | undefined, 'Appointment');
    const { data, prefetched, fetched, linked, linksUnread } = await this.prefetch.resolve(
      APPOINTMENT_BOOK_QUERIES,
      request,
      patientId,
      budget,
    );
    const tasks = resourcesIn<Task>(data.sessions, 'Task');
    const cardOptions = { ...options, displays: this.displays };
    const sessionCodes = this.sessionCodesFor(tasks);
    const advice = appointments.map((a) => ({
      appointment: a,
      advice: bookingAdvice(a, [`Patient/${patientId}`, ...linked], tasks, sessionCodes),
    }));
    const sessionTime = advice.some((a) => a.advice.kind !== 'unrelated' && a.advice.kind !== 'outside-window');
    // Its sessions may be under a record merged into this one: said when one appointment may be an infusion.
    const mayBeASession = appointments.some((a) => !forAnotherService(a, sessionCodes));
    const cards = sortCards([
      ...advice.flatMap(({ appointment, advice: a }) => adviceCards(appointment, a, cardOptions)),
      // Booking an infusion for a patient with a contraindication on record: the same cards patient-view shows.
      ...(sessionTime
        ? contraindicationCards(resourcesIn<DetectedIssue>(data.contraindications, 'DetectedIssue'), cardOptions)
        : []),
      ...(mayBeASession ? mergedRecordsUnreadCards(patientId, linksUnread, cardOptions, 'appointment-book') : []),
    ]);
    return { cards, counts: { prefetched, fetched }, patientsRead: [`Patient/${patientId}`, ...linked] };
  }

  /**
   * The catalog's infusion codes; none (the appointment judged by its time alone) when one of the patient's sessions
   * is of an activity the catalog does not define (an EHR's protocol, which may code its infusion otherwise): the
   * card would rather say too much than call that protocol's session another service's.
   */
  private sessionCodesFor(tasks: Task[]): Coding[] {
    const unknown = tasks.some((t) => t.instantiatesCanonical && !this.catalog.resolve(t.instantiatesCanonical));
    return unknown ? [] : this.sessionCodes;
  }
}

function adviceCards(appointment: Appointment, advice: BookingAdvice, options: CardOptions): Card[] {
  if (advice.kind === 'unrelated' || advice.kind === 'books') return [];
  const name = taskName(advice.task, options.displays);
  const at = appointment.start
    ? `${clinicDateTime(appointment.start, options.zone)} ${options.zone ?? UTC_ZONE}`
    : 'an unknown time';
  const due = advice.task.restriction?.period;
  const card = (indicator: Card['indicator'], title: string, detail: string): Card => ({
    uuid: uuidFromKey(`cds:booking:${appointment.id ?? at}:${advice.task.id}:${advice.kind}`),
    summary: summary(title),
    detail,
    indicator,
    source: { label: options.sourceLabel },
    links: links(options, 'Open the clinician worklist'),
  });
  switch (advice.kind) {
    case 'not-approved':
      return [
        card(
          'warning',
          `Ketamine session not approved yet: ${name}`,
          `The appointment at ${at} is in the window of **${name}** (due ${clinicDays(due ?? {}, options.zone)}), which awaits a clinician's approval. Approve it on the worklist before the session: its order and the patient's reminders are written then, timed from this appointment.`,
        ),
      ];
    case 'on-hold':
      return [
        card(
          'critical',
          `Ketamine session on hold: ${name}`,
          `The appointment at ${at} is for **${name}**, which is on hold: ${advice.task.statusReason?.text ?? 'a contraindication was found after approval'}. Nothing is to be given until a clinician reviews it (an override with a reason, or a rejection).`,
        ),
      ];
    case 'outside-window':
      return [
        card(
          'warning',
          `Outside the ketamine protocol window: ${name} may be given ${clinicDays(advice.allowed, options.zone)}`,
          `The appointment at ${at} falls outside the window the protocol allows for **${name}** (${clinicDays(advice.allowed, options.zone)}), and of every other open session of the patient's. Book it within the window, or reschedule the session on the worklist.`,
        ),
      ];
  }
}
