import type { Period, Task } from '@medplum/fhirtypes';
import { clinicPeriod, periodWithin, protocolWindowOf, UTC_ZONE } from '@kc/protocols';
import { keptOnHold, ordersApprovedOn, transition, type TransitionInput } from '@kc/task-states';

/** Why a decision cannot be taken; the HTTP layer turns it into 422. (Invalid transitions are InvalidTransition: 409.) */
export class DecisionRefused extends Error {}

export type Decision = 'approve' | 'reject' | 'reschedule';

/** The clinician's decisions on a Task, through the state machine (libs/task-states, docs/task-states.md). */
export function approve(task: Task, owner: Task['owner'], now: Date): Task {
  return keptOnHold(task, transition(task, { event: 'approve', now, owner }));
}

/** Who is to do it from now on (Task.owner), or nobody (undefined). */
export function assign(task: Task, owner: Task['owner'], now: Date): Task {
  return transition(task, { event: 'assign', now, owner });
}

/** Another dose for an approved session not given yet: the Task stays as it is (its new order says the dose). */
export function changeDose(task: Task, now: Date): Task {
  return transition(task, { event: 'change-dose', now });
}

export function reject(task: Task, reason: string, now: Date): Task {
  return transition(task, { event: 'reject', now, reason });
}

/** Moves the due window, only inside the window the protocol allows (kept on the Task as an extension). */
export function reschedule(
  task: Task,
  period: Period,
  now: Date,
  zone: string = UTC_ZONE,
  owner?: TransitionInput['owner'],
): Task {
  const allowed = protocolWindowOf(task);
  if (!allowed) throw new DecisionRefused('Task has no protocol window to reschedule within');
  if (!periodWithin(period, allowed)) {
    // In the clinic's days and times, as the page shows them (the zone named).
    throw new DecisionRefused(`The new window must lie within the protocol's window ${clinicPeriod(allowed, zone)}`);
  }
  if (Date.parse(period.end!) <= now.getTime()) throw new DecisionRefused('The new window must end in the future');
  return keptOnHold(task, transition(task, { event: 'reschedule', now, window: period, owner }));
}

/**
 * What each decision asked for, as the Task holds it once done: the same caller sending the same decision on the
 * same version is a retry only if it asks the same (DecisionWriter answers anything else 412).
 */
export const holdsWhatWasAsked = {
  owner: (task: Task, owner: Task['owner']): boolean => task.owner?.reference === owner?.reference,
  window: (task: Task, window: Period): boolean =>
    sameInstant(task.restriction?.period?.start, window.start) &&
    sameInstant(task.restriction?.period?.end, window.end),
  reason: (task: Task, reason: string): boolean => task.statusReason?.text === reason,
  onOrder: (task: Task, order: string): boolean => ordersApprovedOn(task).includes(order),
};

function sameInstant(a: string | undefined, b: string | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && Date.parse(a) === Date.parse(b));
}
