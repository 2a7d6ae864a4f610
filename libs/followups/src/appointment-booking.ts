import type { Appointment, Period, Task } from '@medplum/fhirtypes';
import { periodWithin, protocolWindowOf } from '@kc/protocols';
import { isApproved, isOpen } from '@kc/task-states';

/** An appointment that holds a slot for the patient (R4 Appointment.status). */
const HOLDS_A_SLOT: readonly Appointment['status'][] = ['booked', 'arrived', 'checked-in'];

export type Booking = { task: Task; window: Period } | { none: string };

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
 * None: not booked (proposed, cancelled, a no-show...), no start or end, no patient, no such session, outside the
 * protocol's window (the protocol decides when a session may be; the clinic is told on the worklist as before), or
 * booked already at that time (a notification again).
 */
export function bookingFor(appointment: Appointment, tasks: Task[]): Booking {
  if (!HOLDS_A_SLOT.includes(appointment.status)) return { none: `it holds no slot (${appointment.status})` };
  const start = Date.parse(appointment.start ?? '');
  const end = Date.parse(appointment.end ?? '');
  if (Number.isNaN(start) || Number.isNaN(end) || end <= start) return { none: 'it has no start and end' };
  const patient = appointmentPatient(appointment);
  if (!patient) return { none: 'it names no patient' };
  const window = { start: new Date(start).toISOString(), end: new Date(end).toISOString() };
  const sessions = tasks.filter(
    (t) =>
      t.for?.reference === patient &&
      isApproved(t) &&
      isOpen(t) &&
      t.focus?.reference?.startsWith('MedicationRequest/'),
  );
  const named = [...(appointment.supportingInformation ?? []), ...(appointment.basedOn ?? [])]
    .map((r) => r.reference ?? '')
    .filter((r) => r.startsWith('Task/'));
  let task: Task | undefined;
  if (named.length) {
    task = sessions.find((t) => named.includes(`Task/${t.id}`));
    if (!task) return { none: 'the Task it names is not an approved session of the patient' };
    const allowed = protocolWindowOf(task);
    if (allowed && !periodWithin(window, allowed))
      return { none: `it is outside the session's protocol window (${allowed.start} .. ${allowed.end})` };
  } else {
    const fitting = sessions.filter((t) => {
      const allowed = protocolWindowOf(t);
      return allowed !== undefined && periodWithin(window, allowed);
    });
    const startOf = (t: Task) => Date.parse(t.restriction?.period?.start ?? '');
    const holdsStart = (t: Task) => startOf(t) <= start && start <= Date.parse(t.restriction?.period?.end ?? '');
    task = fitting.find(holdsStart) ?? fitting.sort((a, b) => startOf(a) - startOf(b))[0];
    if (!task)
      return {
        none: sessions.length
          ? "it is outside every approved session's protocol window"
          : 'the patient has no approved session',
      };
  }
  const current = task.restriction?.period;
  if (Date.parse(current?.start ?? '') === start && Date.parse(current?.end ?? '') === end)
    return { none: 'the session is booked at that time already' };
  return { task, window };
}
