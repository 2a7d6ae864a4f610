import type { CommunicationRequest, MedicationAdministration, Task } from '@medplum/fhirtypes';
import {
  approvedOutside,
  orderTypeOf,
  isClosedElsewhere,
  isOpenOrder,
  openOrdersOfSession,
  orderForClosedTask,
  type OpenOrder,
  windowMovedOutside,
} from '@kc/task-states';
import { givenBy } from './given-during-infusion-in-error';
import { remindersRevokedFor } from './reminders';
import { givenSessionChanges, sessionBegunAtThePump, type GivenSessionChanges } from './stopped-plans';

/**
 * A Task open as this service last wrote it (its business state) and closed since by its status alone: an EHR
 * completed, cancelled, rejected or failed it, writing nothing else. Any Task whose approval orders something (an
 * infusion session, patient instructions); a check (nothing ordered) when not completed, since a check the EHR completed
 * is recorded as done (CheckDoneElsewhere), its reminders with it. Before session 44, infusion sessions only: the
 * instructions' order waited for the 15-minute reconciliation, and a cancelled check's reminders for their delivery.
 */
export function isTaskClosedInEhr(task: Task): boolean {
  if (!isClosedElsewhere(task)) return false;
  return orderTypeOf(task) !== undefined || task.status !== 'completed';
}

/**
 * A Task an EHR changed that the service acts on (TasksChangedInEhr): a Task it closed by its status (isTaskClosedInEhr), a
 * Task it set to be done while it awaited approval here (approvedOutside), or an open Task whose due window it moved
 * (windowMovedOutside, since session 44).
 */
export function isTaskChangedInEhr(task: Task): boolean {
  return isTaskClosedInEhr(task) || approvedOutside(task) || windowMovedOutside(task);
}

/**
 * What a Task an EHR closed by its status leaves to close (since session 43 for infusion sessions, since session 44 for
 * any Task, at its notification or the poll; before, only the 15-minute reconciliation closed its orders, and none of its
 * reminders): its orders still to give
 * (the one written here, the EHR's it was approved on, the EHR's replacements left open) closed as that status says
 * (completed, as given; else cancelled, not to give: orderForClosedTask), its reminders not sent yet revoked. One the
 * pump recorded giving has its orders completed as given by that record, whatever the status (the drug went in: the
 * EHR's cancel crossed the pump, clinic day seed 5009). One the pump is still running, closed as not given, is left for
 * now (the reconciliation looks again while the Task was closed in the last day). Pure.
 */
export function changesOfTaskClosedInEhr(input: {
  task: Task;
  open?: OpenOrder;
  reminders: CommunicationRequest[];
  zone?: string;
}): (GivenSessionChanges & { administration?: MedicationAdministration }) | undefined {
  const { task } = input;
  if (!isTaskClosedInEhr(task)) return undefined;
  const open = openOrdersOfSession(input.open).filter((o) => isOpenOrder(o.order));
  const administration = open.flatMap((o) => o.administrations).find((a) => a.status === 'completed');
  if (administration?.id) {
    const changes = givenSessionChanges(
      task,
      open.map((o) => o.order),
      givenBy(administration, input.zone),
      input.reminders,
    );
    return changes.orders.length || changes.reminders.length ? { ...changes, administration } : undefined;
  }
  const done = task.status === 'completed';
  if (!done && sessionBegunAtThePump(input.open)) return undefined;
  const orders = open.flatMap(({ order }) => {
    const written = orderForClosedTask(task, order);
    return written ? [{ read: order, written }] : [];
  });
  const reason = done
    ? `Not sent: the ${task.description ?? 'session'} was done`
    : `Not sent: its Task was ${task.status} in the EHR`;
  const reminders = remindersRevokedFor(task, input.reminders, reason);
  return orders.length || reminders.length ? { orders, reminders } : undefined;
}
