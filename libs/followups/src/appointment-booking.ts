import type { Appointment, Coding, Period, Task } from '@medplum/fhirtypes';
import { clinicPeriod, GIVES_UP_ITS_SLOT, periodWithin, protocolWindowOf } from '@kc/protocols';
import { isApproved, isOpen, withWindow } from '@kc/task-states';

/** An appointment that holds a slot for the patient (R4 Appointment.status). */
const HOLDS_A_SLOT: readonly Appointment['status'][] = ['booked', 'arrived', 'checked-in'];
// An appointment whose slot is gone (GIVES_UP_ITS_SLOT, libs/protocols: the clinic's alert reads it too): the session
// booked at it is not at that time any more.

/**
 * What an appointment does to the patient's approved sessions: books one at its time (`task`, `window`), gives up the
 * time one was booked at (`cancelled`: its reminders revoked, the clinic told to book it again), or nothing (`none`).
 */
export type Booking = { task: Task; window: Period } | { cancelled: Task; why: string } | { none: string };

/**
 * Whether an appointment says it is for another service than the protocols' infusions: its `serviceType` is coded and
 * none of its codes is an infusion's (`sessionCodes`: the infusion ActivityDefinitions' codes, SNOMED 14152002 in the
 * shipped protocols; none known: not judged). One with no serviceType is judged by its time, as most scheduling systems
 * leave it empty; its appointmentType (routine, follow-up) and reasonCode (the condition treated) do not say what it is
 * for. Before session 28 any appointment in a session's protocol window booked it (a psychiatry review moved the
 * session and its reminders).
 */
export function forAnotherService(appointment: Appointment, sessionCodes: Coding[]): boolean {
  if (!sessionCodes.length) return false;
  const codes = (appointment.serviceType ?? []).flatMap((t) => t.coding ?? []).filter((c) => c.code);
  if (!codes.length) return false;
  return !codes.some((c) => sessionCodes.some((s) => s.system === c.system && s.code === c.code));
}

/** The patient an appointment is for: its participant that is a Patient. */
export function appointmentPatient(appointment: Appointment): string | undefined {
  return appointment.participant
    ?.map((p) => p.actor?.reference)
    .find((r): r is string => /^Patient\/[^/]+$/.test(r ?? ''));
}

/**
 * The approved session an appointment the clinic booked in its scheduling system is for, and the window it books
 * (the appointment's start and end): so the session's due window, and the reminders timed from it (the fasting one,
 * six hours before), are the appointment's, without the clinic rescheduling it here as well.
 * - The Task the appointment names (`supportingInformation` or `basedOn`: `Task/<id>`), when it is one of the patient's
 *   approved sessions;
 * - else the patient's approved session (an open Task, `ready`, ordering a medication) whose protocol window holds the
 *   appointment; of several, the one whose due window holds its start, else the soonest due.
 * None: not booked (proposed, a no-show...), no start or end, no patient, for another service (forAnotherService, unless
 * it names the Task), no such session, outside the protocol's window (the protocol decides when a session may be; the
 * clinic is told on the worklist as before), or booked already at that time (a notification again). A cancelled one
 * gives up the slot a session was booked at (slotGivenUp).
 */
export function bookingFor(
  appointment: Appointment,
  tasks: Task[],
  sessionCodes: Coding[] = [],
  zone?: string,
  /** The other records of the appointment's patient (a merge, since session 49): their sessions are the person's. */
  linked: string[] = [],
): Booking {
  const releases = GIVES_UP_ITS_SLOT.includes(appointment.status);
  if (!HOLDS_A_SLOT.includes(appointment.status) && !releases)
    return { none: `it holds no slot (${appointment.status})` };
  const start = Date.parse(appointment.start ?? '');
  const end = Date.parse(appointment.end ?? '');
  if (Number.isNaN(start) || Number.isNaN(end) || end <= start) return { none: 'it has no start and end' };
  const patient = appointmentPatient(appointment);
  if (!patient) return { none: 'it names no patient' };
  const window = { start: new Date(start).toISOString(), end: new Date(end).toISOString() };
  const sessions = approvedSessionsOf([patient, ...linked], tasks);
  const named = namedTasks(appointment);
  if (!named.length && forAnotherService(appointment, sessionCodes))
    return { none: 'it is for another service (its serviceType is not an infusion)' };
  if (releases) return slotGivenUp(appointment, window, sessions);
  let task: Task | undefined;
  if (named.length) {
    task = sessions.find((t) => named.includes(`Task/${t.id}`));
    if (!task) return { none: 'the Task it names is not an approved session of the patient' };
    const allowed = protocolWindowOf(task);
    if (allowed && !periodWithin(window, allowed))
      return { none: `it is outside the session's protocol window, ${clinicPeriod(allowed, zone)}` };
  } else {
    const fitting = sessionsAllowedIn(window, sessions);
    const holdsStart = (t: Task) => dueStart(t) <= start && start <= Date.parse(t.restriction?.period?.end ?? '');
    task = fitting.find(holdsStart) ?? fitting[0];
    if (!task)
      return {
        none: sessions.length
          ? "it is outside every approved session's protocol window"
          : 'the patient has no approved session',
      };
  }
  if (sameWindow(task.restriction?.period, window)) return { none: 'the session is booked at that time already' };
  return { task, window };
}

/**
 * A session whose appointment was cancelled: due again within its protocol window (not at the slot that is gone, which
 * would make it overdue as soon as that slot passed, though the protocol still allows it), saying why, for the clinic
 * to book it again. Before session 28 its window stayed at the cancelled slot.
 */
export function unbookedSession(task: Task, why: string): Task {
  const allowed = protocolWindowOf(task);
  return { ...withWindow(task, allowed), statusReason: { text: why } };
}

/** Why a session's time is void once its appointment is cancelled, as its Task says it (`statusReason`). */
export function appointmentCancelledReason(appointment: Appointment): string {
  return `Its appointment was cancelled in the scheduling system (Appointment/${appointment.id}): book it again`;
}

/**
 * A cancelled appointment (or one entered in error): the session booked at its time (the Task it names, or the one
 * whose due window is exactly its slot) is at no time now. None when no session is booked at it (never booked, or
 * booked again since) or when the session says so already (a notification again).
 */
function slotGivenUp(appointment: Appointment, window: Period, sessions: Task[]): Booking {
  const named = namedTasks(appointment);
  const task = sessions.find(
    (t) => (!named.length || named.includes(`Task/${t.id}`)) && sameWindow(t.restriction?.period, window),
  );
  if (!task) return { none: 'no approved session is booked at its time' };
  const why = appointmentCancelledReason(appointment);
  if (task.statusReason?.text === why) return { none: 'the session says its appointment was cancelled already' };
  return { cancelled: task, why };
}

/** The patient's sessions still to be given (open Tasks ordering a medication), soonest due first. */
export function openSessionsOf(patient: string | string[], tasks: Task[]): Task[] {
  const records = [patient].flat();
  return tasks
    .filter(
      (t) =>
        records.includes(t.for?.reference ?? '') && isOpen(t) && t.focus?.reference?.startsWith('MedicationRequest/'),
    )
    .sort((a, b) => dueStart(a) - dueStart(b));
}

/** Those approved (`ready`): the ones an appointment books. */
function approvedSessionsOf(patient: string | string[], tasks: Task[]): Task[] {
  return openSessionsOf(patient, tasks).filter(isApproved);
}

/** The sessions the protocol lets be given in this window (it lies within their protocol window), in their order. */
export function sessionsAllowedIn(window: Period, sessions: Task[]): Task[] {
  return sessions.filter((t) => {
    const allowed = protocolWindowOf(t);
    return allowed !== undefined && periodWithin(window, allowed);
  });
}

function dueStart(task: Task): number {
  return Date.parse(task.restriction?.period?.start ?? '');
}

/** The Tasks an appointment names (`supportingInformation`, or `basedOn` as some systems write it). */
function namedTasks(appointment: Appointment): string[] {
  return [...(appointment.supportingInformation ?? []), ...(appointment.basedOn ?? [])]
    .map((r) => r.reference ?? '')
    .filter((r) => r.startsWith('Task/'));
}

function sameWindow(a: Period | undefined, b: Period): boolean {
  return Date.parse(a?.start ?? '') === Date.parse(b.start!) && Date.parse(a?.end ?? '') === Date.parse(b.end!);
}
