import type { Bundle, MedicationRequest } from '@medplum/fhirtypes';
import { matchesOf, type NamedSearch } from '@kc/fhir';
import { standingRateNotice } from '@kc/followups';
import { orderRateText } from '@kc/protocols';
import {
  isHeldForContraindication,
  isHeldForPausedPlan,
  isOpenOrder,
  orderInEhr,
  ordersFollowedOn,
  orderKeySearch,
  ordersBySession,
  orderTaskIdOf,
} from '@kc/task-states';

/**
 * What the to-do list says of an approved session's order, as it is now on the FHIR server: the EHR may have replaced
 * it (a dose changed there: its own order, `priorPrescription` the one approved here), put it on hold (a pharmacist),
 * or cancelled it. Before session 28 the list read only the open order approved here, so a session whose order the
 * EHR had cancelled showed no dose and nothing else: a nurse could take it as still to give.
 */
export interface ToDoOrder {
  /** The order to give: the one approved here, or the EHR's (replacing it, or the one the session was approved on). */
  current?: MedicationRequest;
  /** `current` is the EHR's: its dose is changed there (not with `$change-dose`, which replaces this service's). */
  ehrOrder?: boolean;
  /** Words for the clinician when the order is not simply the one approved here, active. */
  status?: string;
}

/** The search, under this name, for the orders the page's approved Tasks' approvals wrote (any status: one request). */
export const TO_DO_ORDERS = 'orders of the to-do Tasks';

/** The search, under this name, for the EHR's orders the page's Tasks were approved on (Task.basedOn). */
export const TO_DO_ORDERS_APPROVED_ON = 'EHR orders the to-do Tasks were approved on';

/** A to-do item as these read it: its Task, the request it authorises, and the EHR orders it was approved on. */
export interface ToDoItem {
  id: string;
  request?: string;
  approvedOn?: string[];
}

/**
 * The orders of a page of approved Tasks that authorise a MedicationRequest: those their approvals wrote, and the EHR's
 * they were approved on (a second search, when any); none to read: no search.
 */
export function toDoOrdersSearches(items: ToDoItem[]): NamedSearch[] {
  const sessions = items.filter((i) => i.request?.startsWith('MedicationRequest/'));
  const approvedOn = [...new Set(sessions.flatMap((i) => i.approvedOn ?? []))].map((r) => r.split('/')[1]);
  return [
    ...(sessions.length
      ? [
          {
            name: TO_DO_ORDERS,
            resourceType: 'MedicationRequest',
            // Every status: a dose changed here cancels the old order (the open one is shown); one cancelled or
            // replaced in the EHR is said so.
            params: { identifier: sessions.map((i) => orderKeySearch(i.id)).join(','), _count: '200' },
            everyMatch: true,
          },
        ]
      : []),
    ...(approvedOn.length
      ? [
          {
            name: TO_DO_ORDERS_APPROVED_ON,
            resourceType: 'MedicationRequest',
            params: { _id: approvedOn.join(','), _count: '200' },
            everyMatch: true,
          },
        ]
      : []),
  ];
}

/** Each Task's orders found: by the Task whose approval wrote them, and the EHR's by the Tasks approved on them. */
export function ordersByTask(
  found: Bundle | undefined,
  approvedOnFound?: Bundle,
  items: ToDoItem[] = [],
): Map<string, MedicationRequest[]> {
  return ordersBySession(
    [...matchesOf<MedicationRequest>(found), ...matchesOf<MedicationRequest>(approvedOnFound)],
    items,
  );
}

/**
 * The Tasks whose patients' orders since are read, a search more, to follow their chains: those whose orders are all
 * closed (a replacement may give the session), and those whose patient has an open order naming one the page has not
 * read (an EHR that replaced twice: the replacement left open names a replacement it cancelled, which the open orders
 * alone cannot tie to the session; before session 40 the row never named it).
 */
export function tasksToFollowSince(
  byTask: Map<string, MedicationRequest[]>,
  patientsOpen: MedicationRequest[],
  patientOf: (task: string) => string | undefined,
): string[] {
  const read = new Set([...[...byTask.values()].flat(), ...patientsOpen].map((o) => `MedicationRequest/${o.id}`));
  const namingUnread = new Set(
    patientsOpen.filter((o) => ordersFollowedOn(o).some((r) => !read.has(r))).map((o) => o.subject?.reference),
  );
  return [...byTask]
    .filter(([task, orders]) => !orders.some(isOpenOrder) || namingUnread.has(patientOf(task)))
    .map(([task]) => task);
}

/**
 * A to-do Task's order now, from the orders its approval wrote (any status) and its patient's orders since: the open
 * one written here; else the latest open order replacing it (`priorPrescription`, followed at any depth:
 * orderInEhr); else none, saying how the last one was closed.
 */
export function toDoOrderOf(written: MedicationRequest[], patientOrders: MedicationRequest[] = []): ToDoOrder {
  const { current, replacedInEhr, last, leftOpen } = orderInEhr(written, patientOrders);
  const alsoOpen = leftOpen.length ? leftOpenWords(leftOpen) : undefined;
  const joined = (...parts: (string | undefined)[]) => parts.filter(Boolean).join('. ') || undefined;
  if (current && orderTaskIdOf(current)) {
    const status = joined(heldElsewhere(current).status, standingRateNotice(current), alsoOpen);
    return { current, ...(status ? { status } : {}) };
  }
  if (current) {
    const what = replacedInEhr
      ? 'Ordered in the EHR, replacing the order approved here'
      : 'Approved on the order written in the EHR';
    return { current, ehrOrder: true, status: joined(what, heldElsewhere(current).status, alsoOpen) };
  }
  if (!last) return {};
  const reason = last.statusReason?.text;
  return { status: `No order to give: its order ${CLOSED[last.status] ?? last.status}${reason ? ` (${reason})` : ''}` };
}

const CLOSED: Partial<Record<MedicationRequest['status'], string>> = {
  cancelled: 'was cancelled',
  stopped: 'was stopped',
  completed: 'is completed',
  'entered-in-error': 'was entered in error',
  draft: 'is a draft',
  unknown: 'has an unknown status',
};

/**
 * The session's other open orders, in words: the EHR's replacement written while the order it replaces stayed open
 * (its cancel refused or never sent) is a second order to give for one session. The service acts on both (holds,
 * closes both at the infusion), but a nurse at the pump reading the EHR sees two, so the row says so (session 39).
 */
function leftOpenWords(orders: MedicationRequest[]): string {
  const each = orders.map((o) => {
    const rate = orderRateText(o);
    return `${rate ? `${rate}, ` : ''}${orderTaskIdOf(o) ? 'approved here' : 'ordered in the EHR'}`;
  });
  return `Also open for this session: ${each.join('; ')}. Two orders to give: cancel one in the EHR`;
}

/** On hold by someone else (a pharmacist): why. This service's holds are said on the row already (held, paused). */
function heldElsewhere(order: MedicationRequest): { status?: string } {
  if (order.status !== 'on-hold' || isHeldForContraindication(order) || isHeldForPausedPlan(order)) return {};
  return { status: `Its order is on hold${order.statusReason?.text ? `: ${order.statusReason.text}` : ''}` };
}
