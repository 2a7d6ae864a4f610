import type { Appointment, Coding, Period, Task } from '@medplum/fhirtypes';
import { protocolWindowOf } from '@kc/protocols';
import { isApproved } from '@kc/task-states';
import { forAnotherService, openSessionsOf, sessionsAllowedIn } from './appointment-booking';

/**
 * What booking an appointment means for the patient's ketamine sessions, as an EHR is about to book it (CDS Hooks
 * appointment-book), judged by its time against each open session's protocol window:
 * - `books`: an approved session may be given then (nothing to say);
 * - `on-hold`: the session that may be given then is held for a contraindication (nothing is to be given);
 * - `not-approved`: the session that may be given then awaits a clinician's approval;
 * - `outside-window`: the patient has open sessions, none of which may be given then (`allowed`: the soonest due's);
 * - `unrelated`: for another service (its serviceType says so: forAnotherService), no open session, or no time to
 *   judge: the appointment is not for one as far as can be told.
 */
export type BookingAdvice =
  | { kind: 'books' | 'on-hold' | 'not-approved'; task: Task }
  | { kind: 'outside-window'; task: Task; allowed: Period }
  | { kind: 'unrelated' };

export function bookingAdvice(
  appointment: Appointment,
  /** The patient's record, or the person's records (a merge: since session 49). */
  patient: string | string[],
  tasks: Task[],
  sessionCodes: Coding[] = [],
): BookingAdvice {
  if (forAnotherService(appointment, sessionCodes)) return { kind: 'unrelated' };
  const start = Date.parse(appointment.start ?? '');
  const end = Date.parse(appointment.end ?? appointment.start ?? '');
  if (Number.isNaN(start) || Number.isNaN(end)) return { kind: 'unrelated' };
  const window = { start: new Date(start).toISOString(), end: new Date(end).toISOString() };
  const sessions = openSessionsOf(patient, tasks);
  if (!sessions.length) return { kind: 'unrelated' };
  const fitting = sessionsAllowedIn(window, sessions);
  const approved = fitting.find(isApproved);
  if (approved) return { kind: 'books', task: approved };
  const held = fitting.find((t) => t.status === 'on-hold');
  if (held) return { kind: 'on-hold', task: held };
  const waiting = fitting.find((t) => t.status === 'draft');
  if (waiting) return { kind: 'not-approved', task: waiting };
  const soonest = sessions.find((t) => protocolWindowOf(t));
  return soonest
    ? { kind: 'outside-window', task: soonest, allowed: protocolWindowOf(soonest)! }
    : { kind: 'unrelated' };
}
