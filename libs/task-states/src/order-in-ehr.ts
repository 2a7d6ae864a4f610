import type { Coding, MedicationAdministration, MedicationRequest, Task } from '@medplum/fhirtypes';
import { isOpenOrder, orderTaskIdOf, sessionBegunBy, type AuthorisableRequest } from './request-authorisation';
import { sameCoding } from './order-status-reason';
import { TASK_STATE_SYSTEM } from './task-states';

/**
 * An approved session's order as the EHR has it now. The EHR may have replaced the order approved here (a dose changed
 * there: its own order, `priorPrescription` the one it replaces, and maybe replaced again), held it, or closed it.
 */
export interface OrderInEhr {
  /** The order to give: the open one written here, else the latest open one replacing it in the EHR. */
  current?: MedicationRequest;
  /** `current` is the EHR's, replacing the one written here. */
  replacedInEhr?: boolean;
  /** No order open: the one of the chain (written here, or replacing it) updated last, telling how it ended. */
  last?: MedicationRequest;
  /** Every order of the chain: those written here and their replacements, at any depth. */
  chain: MedicationRequest[];
  /**
   * The chain's other open orders beside `current`: a replacement the EHR wrote while the order it replaces stayed open
   * (its cancel refused or never sent), a second order to give for one session.
   */
  leftOpen: MedicationRequest[];
}

/** An order closed so that its session is not to be given under it (not `completed`: given, or done with). */
const CLOSED_UNGIVEN: ReadonlySet<MedicationRequest['status']> = new Set(['cancelled', 'stopped', 'entered-in-error']);

/**
 * The order of a session from the orders its approval wrote (any status) and its patient's orders written since
 * (any status, whoever wrote them): replacements are followed at any depth, through `priorPrescription` (R4: "an
 * earlier order") or `basedOn` naming an order of the chain, so an order changed twice in the EHR is still found.
 */
export function orderInEhr(written: MedicationRequest[], patientOrders: MedicationRequest[] = []): OrderInEhr {
  const chain = new Map(written.map((o) => [`MedicationRequest/${o.id}`, o]));
  for (let grew = true; grew;) {
    grew = false;
    for (const order of patientOrders) {
      const ref = `MedicationRequest/${order.id}`;
      if (chain.has(ref) || !replacesOneOf(order, chain)) continue;
      chain.set(ref, order);
      grew = true;
    }
  }
  const orders = [...chain.values()];
  const beside = (current: MedicationRequest) => orders.filter((o) => o !== current && isOpenOrder(o));
  const open = written.find(isOpenOrder);
  if (open) return { current: open, chain: orders, leftOpen: beside(open) };
  const replacement = latestFirst(orders.filter((o) => !written.includes(o) && isOpenOrder(o)))[0];
  if (replacement) return { current: replacement, replacedInEhr: true, chain: orders, leftOpen: beside(replacement) };
  return { last: latestFirst(orders)[0], chain: orders, leftOpen: [] };
}

/** An order an approved session is still to be given under (active, or held), with what the pump recorded of it. */
export interface OpenOrder {
  order: AuthorisableRequest;
  administrations: MedicationAdministration[];
  /**
   * The session's other open orders, of the same chain: the EHR's replacement of an order left open beside it (a dose
   * changed there, its cancel not written), or an order replaced twice with its first replacement left open. Two orders
   * to give for one session, so what is done to the order is done to them (session 38).
   */
  leftOpen?: OpenOrder[];
}

/**
 * Each order once, however many sessions it is the order of (two approved on one EHR order, as a build before session
 * 42 allowed: an update of it written twice fails the whole transaction). The last one given for an order, in the
 * place of its first.
 */
export function eachOrderOnce<T extends { order: AuthorisableRequest }>(found: T[]): T[] {
  return [...new Map(found.map((f) => [`${f.order.resourceType}/${f.order.id}`, f])).values()];
}

/** A session's open orders: the one to give and those left open beside it. */
export function openOrdersOfSession(open: OpenOrder | undefined): OpenOrder[] {
  return open ? [open, ...(open.leftOpen ?? [])] : [];
}

/**
 * An approved session's orders still to be given, from the orders written for it (those its approval wrote, in any
 * status, and the EHR's it was approved on), its patient's orders written since (any status, whoever wrote them) and
 * what the pump recorded of them: the order to give (orderInEhr's `current`: the open one written for it, else the
 * EHR's latest open replacement of those, at any depth), and every other open order of its chain left open beside it.
 * Undefined when none is open. Orders other than medication have no chain: the open one written.
 */
export function sessionOpenOrder(
  written: AuthorisableRequest[],
  patientOrders: MedicationRequest[],
  administrations: MedicationAdministration[],
): OpenOrder | undefined {
  const records = (order: AuthorisableRequest): OpenOrder => ({
    order,
    administrations: administrations.filter((a) => a.request?.reference === `${order.resourceType}/${order.id}`),
  });
  const medication = written.filter((o): o is MedicationRequest => o.resourceType === 'MedicationRequest');
  if (!medication.length) {
    const open = written.find(isOpenOrder);
    return open && records(open);
  }
  const { current, leftOpen } = orderInEhr(medication, patientOrders);
  if (!current) return undefined;
  const beside = leftOpen.map(records);
  return { ...records(current), ...(beside.length ? { leftOpen: beside } : {}) };
}

/**
 * The search (MedicationRequest) for the patients' orders, whoever wrote them and in any status, updated since the
 * earliest of `orders` was written: where the EHR's replacements of those orders are, at any depth. Every order of the
 * patients when one has no `authoredOn` (an EHR's own): its `meta.lastUpdated` is its closing, which a replacement
 * written in the same transaction precedes (before session 42 it was the bound, and such a replacement was missed:
 * clinic day, seed 2249).
 */
export function replacementOrdersParams(patients: string[], orders: MedicationRequest[]): Record<string, string> {
  const since = orders.some((o) => !o.authoredOn)
    ? undefined
    : orders
        .map((o) => o.authoredOn ?? '')
        .filter(Boolean)
        .sort()[0];
  return {
    subject: patients.join(','),
    intent: 'order',
    ...(since ? { _lastUpdated: `ge${since}` } : {}),
    _count: '200',
  };
}

/**
 * The order closed with its session not given, when nothing replaces it: what returns an approved session to a
 * clinician. Not when an order of the chain is open or completed, nor when the pump has begun the session under one
 * of them (`administrations`: those of the chain's orders).
 */
export function closedUngiven(
  order: OrderInEhr,
  administrations: MedicationAdministration[] = [],
): MedicationRequest | undefined {
  const { last, chain } = order;
  if (!last || !CLOSED_UNGIVEN.has(last.status)) return undefined;
  if (chain.some((o) => o.status === 'completed')) return undefined;
  const refs = new Set(chain.map((o) => `MedicationRequest/${o.id}`));
  if (sessionBegunBy(administrations.filter((a) => refs.has(a.request?.reference ?? '')))) return undefined;
  return last;
}

/** How an order closed with its session not given ended, in words ("was cancelled in the EHR (Patient unwell)"). */
export function closedInEhrWords(order: MedicationRequest): string {
  const how = order.status === 'entered-in-error' ? 'was entered in error' : `was ${order.status}`;
  const why = order.statusReason?.text ?? order.statusReason?.coding?.[0]?.display;
  return `${how} in the EHR${why ? ` (${why})` : ''}`;
}

/**
 * The orders an order names as the ones it follows on: the one it replaces (`priorPrescription`, R4's "an earlier
 * order") and the orders it is based on. What links a session's chain (orderInEhr); none: an order of its own.
 */
export function ordersFollowedOn(order: MedicationRequest): string[] {
  return [order.priorPrescription?.reference, ...(order.basedOn ?? []).map((b) => b.reference)].filter(
    (r): r is string => Boolean(r?.startsWith('MedicationRequest/')),
  );
}

function replacesOneOf(order: MedicationRequest, chain: Map<string, MedicationRequest>): boolean {
  return ordersFollowedOn(order).some((r) => chain.has(r));
}

function latestFirst(orders: MedicationRequest[]): MedicationRequest[] {
  const at = (o: MedicationRequest) => Date.parse(o.meta?.lastUpdated ?? o.authoredOn ?? '') || 0;
  return orders.slice().sort((a, b) => at(b) - at(a));
}

/**
 * The orders written outside this service that a session was approved on (`Task.basedOn`, MedicationRequests): the
 * EHR had ordered the session already, so its approval wrote none and rests on that order.
 */
export function ordersApprovedOn(task: Task): string[] {
  return (task.basedOn ?? []).flatMap((b) => (b.reference?.startsWith('MedicationRequest/') ? [b.reference] : []));
}

/**
 * The EHR's orders sessions other than `taskId` were approved on (`basedOn`, of `tasks`): each is that session's order,
 * one dose, so neither another session's to be approved on nor an order "outside this care plan" its approval would
 * duplicate (session 42: before, an order approved on by one session, set with no end, was offered to every later one).
 */
export function ordersOfOtherSessions(tasks: Task[], taskId: string | undefined): Set<string> {
  return new Set(tasks.filter((t) => t.id !== taskId).flatMap(ordersApprovedOn));
}

/** An order and those it replaces (`priorPrescription`), newest first; one not among `patientOrders` ends it by ref. */
export function replacedChain(
  order: MedicationRequest,
  patientOrders: MedicationRequest[],
): { ref: string; order?: MedicationRequest }[] {
  const chain: { ref: string; order?: MedicationRequest }[] = [{ ref: `MedicationRequest/${order.id}`, order }];
  for (let prior = order.priorPrescription?.reference; prior && !chain.some((l) => l.ref === prior);) {
    const found = patientOrders.find((o) => `MedicationRequest/${o.id}` === prior);
    chain.push({ ref: prior, order: found });
    prior = found?.priorPrescription?.reference;
  }
  return chain;
}

/**
 * The sessions an order stands for: those of the order itself (`replacedOnly` false), else those of the nearest order
 * it replaces that has any (`priorPrescription`, newest first, through `orders` as read: replacedChain), a dose changed
 * in the EHR being still its session's order. A link's sessions: the one whose approval wrote it (its key) first, then
 * those approved on it (`tasks` naming it in `basedOn`). `through`: the order they were found on (for its plan);
 * `replacement`: found through an order it replaces. A chain through an order not read ends there. One rule for the
 * approval, the worklist and the pump record's jobs since session 50 (before, each walked the chain by its own: one
 * preferred a key anywhere on the chain over the nearest approval).
 */
export function sessionsAlongChain(
  order: MedicationRequest,
  orders: MedicationRequest[],
  tasks: Task[],
  { replacedOnly = false }: { replacedOnly?: boolean } = {},
): { ids: string[]; through: MedicationRequest; replacement: boolean } | undefined {
  const chain = replacedChain(order, orders);
  for (const [i, link] of chain.entries()) {
    if (!link.order || (replacedOnly && i === 0)) continue;
    const ids = sessionIdsOfOrder(link.order, tasks);
    if (ids.length) return { ids, through: link.order, replacement: i > 0 };
  }
  return undefined;
}

/**
 * The EHR's open orders (`open`) that replace an order of a session other than `taskId` (`priorPrescription`, at any
 * depth through `priors`, the replaced orders as read: sessionsAlongChain): one written here for it (its order key) or
 * one it was approved on (`tasks`, those naming it in `basedOn`). Each is that session's order, one dose: neither to be
 * approved on by another session nor an order "outside this care plan" another's approval would duplicate. Since
 * session 48; before, such a replacement was offered to a later session to be approved on, and one dose answered two
 * sessions (clinic day seed 2949).
 */
export function replacementsOfOtherSessions(
  open: MedicationRequest[],
  priors: MedicationRequest[],
  tasks: Task[],
  taskId: string | undefined,
): Set<string> {
  const orders = [...open, ...priors];
  return new Set(
    open.flatMap((order) => {
      const session = sessionsAlongChain(order, orders, tasks, { replacedOnly: true })?.ids[0];
      return session && session !== taskId ? [`MedicationRequest/${order.id}`] : [];
    }),
  );
}

/**
 * Tags the EHR's order a session is approved on (meta.tag): written with the approval, If-Match on the version the
 * approval read, so two sessions approved on one order at the same moment cannot both land (each read it free; the
 * second write finds it changed). Since session 59: the clinic day (seed 6028) found a session left approved on an
 * order another session's infusion had completed.
 */
export const APPROVED_ON_HERE: Coding = {
  system: TASK_STATE_SYSTEM,
  code: 'session-order',
  display: 'The order of a session approved on it in ketamine-careplans',
};

/** The EHR's order as a session's approval on it writes it (APPROVED_ON_HERE): tagged, nothing else changed. */
export function claimedBySession(order: MedicationRequest): MedicationRequest {
  const tag = order.meta?.tag ?? [];
  if (tag.some((t) => sameCoding(t, APPROVED_ON_HERE))) return order;
  return { ...order, meta: { ...order.meta, tag: [...tag, APPROVED_ON_HERE] } };
}

/** The Task approved on an order written outside this service: that order named in `basedOn` (what authorises it). */
export function approvedOnOrder(task: Task, order: string): Task {
  if (ordersApprovedOn(task).includes(order)) return task;
  return { ...task, basedOn: [...(task.basedOn ?? []), { reference: order }] };
}

/**
 * The sessions an order is the order of: the one whose approval wrote it (its key), and those approved on it, of the
 * Tasks given (e.g. the Tasks naming it in `basedOn`, `_revinclude=Task:based-on`). Ids.
 */
export function sessionIdsOfOrder(order: MedicationRequest, tasks: Task[]): string[] {
  const ref = `MedicationRequest/${order.id}`;
  const approvedOnIt = tasks.filter((t) => ordersApprovedOn(t).includes(ref)).map((t) => t.id!);
  return [...new Set([orderTaskIdOf(order), ...approvedOnIt].filter((id): id is string => Boolean(id)))];
}

/** A session as its orders are looked up: its Task's id, and the EHR's orders it was approved on (ordersApprovedOn). */
export interface SessionOrderKeys {
  id: string;
  approvedOn?: string[];
}

/**
 * Orders found, by the session they are of: one written here by its key (`Task/<id>`), one of the EHR's by each
 * session approved on it. Orders of no session are left out.
 */
export function ordersBySession<T extends AuthorisableRequest>(
  orders: T[],
  sessions: SessionOrderKeys[],
): Map<string, T[]> {
  const bySession = new Map<string, T[]>();
  const add = (id: string, order: T) => bySession.set(id, [...(bySession.get(id) ?? []), order]);
  for (const order of orders) {
    const key = orderTaskIdOf(order);
    if (key) add(key, order);
    else
      for (const session of sessions)
        if (session.approvedOn?.includes(`MedicationRequest/${order.id}`)) add(session.id, order);
  }
  return bySession;
}
