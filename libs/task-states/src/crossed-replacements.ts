import type { Resource, Task } from '@medplum/fhirtypes';
import { ordersApprovedOn, type OpenOrder } from './order-in-ehr';
import {
  cancelledProposal,
  orderForClosedTask,
  orderTaskIdOf,
  orderTypeOf,
  sessionBegunBy,
  writtenByDoseChange,
  type AuthorisableRequest,
} from './request-authorisation';
import { isClosedByStatus, stateOf, type TaskState } from './task-states';

/** Sessions this service closed with every order not to give: their plan stopped, a clinician's rejection, superseded. */
const CLOSED_NOT_GIVEN: readonly TaskState[] = ['withdrawn', 'rejected', 'superseded'];

/**
 * A session (a Task whose approval orders medication: the EHR replaces only those) this service closed with its
 * orders cancelled: withdrawn, rejected or superseded.
 */
export function closedWithItsOrdersCancelled(task: Task): boolean {
  const state = stateOf(task);
  return (
    orderTypeOf(task) === 'MedicationRequest' &&
    state !== undefined &&
    CLOSED_NOT_GIVEN.includes(state) &&
    isClosedByStatus(task)
  );
}

/**
 * The open orders of a session closed with its orders cancelled (closedWithItsOrdersCancelled) that its closing would
 * have cancelled had it read them: the EHR's replacements of its orders (neither written here nor the EHR's order it
 * was approved on: those are reconciled by key and by `basedOn`), not begun at the pump (the infusion's), written
 * before the session was closed (`closedAt`; `createdAt` per `Type/id`). Such an order crossed the closing: the EHR
 * replaced the order it read open, its cancel of the old one never sent, while the closing read the session's orders
 * and wrote. One written after the closing replaced an order the EHR could read was closed, and is left (session 56).
 */
export function replacementsCrossingTheClosing(input: {
  task: Task;
  open: OpenOrder[];
  closedAt: string | undefined;
  createdAt: ReadonlyMap<string, string | undefined>;
}): { read: AuthorisableRequest; closed: AuthorisableRequest }[] {
  const { task, open, closedAt } = input;
  if (!closedWithItsOrdersCancelled(task) || !closedAt) return [];
  return replacementsOf(task, open).flatMap(({ order }) => {
    const created = input.createdAt.get(`${order.resourceType}/${order.id}`);
    if (!created || !(Date.parse(created) < Date.parse(closedAt))) return [];
    const closed = orderForClosedTask(task, order);
    return closed ? [{ read: order, closed }] : [];
  });
}

/**
 * The open orders of a session still to be given whose order is a dose change here (writtenByDoseChange; `open` as
 * openOrdersOfSession lists them, that order first) that the change would have replaced had it read them: the EHR's
 * replacements of the session's orders (replacementsOf) written before the change's order (`createdAt` per `Type/id`).
 * The change read the session's orders and replaced every one open, so one written before it and open now was written
 * between its read and its write, and its second read (CrossedEhrOrders) failed. Cancelled with the change's reason
 * (`reason`: doseChangeReason). One written after replaced an order the EHR could read was cancelled, and is left, as
 * after a closing (replacementsCrossingTheClosing).
 */
export function replacementsCrossingTheDoseChange(input: {
  task: Task;
  open: OpenOrder[];
  createdAt: ReadonlyMap<string, string | undefined>;
  reason: string;
}): { read: AuthorisableRequest; closed: AuthorisableRequest }[] {
  const { task, open, createdAt } = input;
  const given = open[0]?.order;
  if (!given || isClosedByStatus(task) || !writtenByDoseChange(given) || orderTaskIdOf(given) !== task.id) return [];
  const changedAt = createdAt.get(`${given.resourceType}/${given.id}`);
  if (!changedAt) return [];
  return replacementsOf(task, open.slice(1)).flatMap(({ order }) => {
    const created = createdAt.get(`${order.resourceType}/${order.id}`);
    return created && Date.parse(created) < Date.parse(changedAt)
      ? [{ read: order, closed: cancelledProposal(order, input.reason) }]
      : [];
  });
}

/** The EHR's open replacements of a session's orders, not begun at the pump: whose writing time is to be known. */
export function replacementsOf(task: Task, open: OpenOrder[]): OpenOrder[] {
  const approvedOn = new Set(ordersApprovedOn(task));
  return open.filter(
    ({ order, administrations }) =>
      !orderTaskIdOf(order) && !approvedOn.has(`${order.resourceType}/${order.id}`) && !sessionBegunBy(administrations),
  );
}

/**
 * When a Task was closed, from its versions (newest first, as a history reads): the time of the oldest of the closed
 * versions it has had since it was last open. Undefined when it is open, or its history shows no version.
 */
export function whenClosed(versions: Task[]): string | undefined {
  let closedAt: string | undefined;
  for (const version of versions) {
    if (!isClosedByStatus(version)) break;
    closedAt = version.meta?.lastUpdated ?? closedAt;
  }
  return closedAt;
}

/** When a resource was written first, from its versions (newest first, every one): its oldest version's time. */
export function whenWritten(versions: Resource[]): string | undefined {
  return versions.at(-1)?.meta?.lastUpdated;
}
