import type { CommunicationRequest, Task } from '@medplum/fhirtypes';
import { isOpen, openOrdersOfSession, orderForClosedTask, type OpenOrder } from '@kc/task-states';
import { isReminderAbout, revokedReminder } from './reminders';
import { sessionBegunAtThePump, type GivenSessionChanges } from './stopped-plans';

/** The Task.status values an EHR closes a Task with. */
const CLOSED_STATUSES: readonly Task['status'][] = ['completed', 'cancelled', 'rejected', 'failed'];

/**
 * An infusion session's Task open as this service last wrote it (its business state) and closed since by its status
 * alone: an EHR completed, cancelled, rejected or failed it, writing nothing else.
 */
export function isSessionClosedInEhr(task: Task): boolean {
  return (
    CLOSED_STATUSES.includes(task.status) &&
    isOpen(task) &&
    Boolean(task.focus?.reference?.startsWith('MedicationRequest/'))
  );
}

/**
 * What a session an EHR closed by its status leaves to close (since session 43, at its notification or the poll;
 * before, only the 15-minute reconciliation closed its orders, and none of its reminders): its orders still to give
 * (the one written here, the EHR's it was approved on, the EHR's replacements left open) closed as that status says
 * (completed, as given; else cancelled, not to give: orderForClosedTask), its reminders not sent yet revoked. One the
 * pump has begun, cancelled in the EHR, is left to its infusion, as a withdrawal leaves it. Pure.
 */
export function changesOfSessionClosedInEhr(input: {
  task: Task;
  open?: OpenOrder;
  reminders: CommunicationRequest[];
}): GivenSessionChanges | undefined {
  const { task } = input;
  if (!isSessionClosedInEhr(task)) return undefined;
  const done = task.status === 'completed';
  if (!done && sessionBegunAtThePump(input.open)) return undefined;
  const orders = openOrdersOfSession(input.open).flatMap(({ order }) => {
    const written = orderForClosedTask(task, order);
    return written ? [{ read: order, written }] : [];
  });
  const reason = done
    ? `Not sent: the ${task.description ?? 'session'} was done`
    : `Not sent: its Task was ${task.status} in the EHR`;
  const reminders = input.reminders
    .filter((r) => r.status === 'active' && isReminderAbout(r, task.id))
    .map((read) => ({ read, revoked: revokedReminder(read, reason) }));
  return orders.length || reminders.length ? { orders, reminders } : undefined;
}
