import type { Bundle, MedicationAdministration, MedicationRequest, Task } from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf, searchEach, type NamedSearch, type SearchParams } from '@kc/fhir';
import {
  isOpenOrder,
  orderInEhr,
  orderKeySearch,
  orderTypeOf,
  orderTaskIdOf,
  ordersApprovedOn,
  ordersBySession,
  sessionIdsOfOrder,
  sessionOpenOrder,
  sessionsAlongChain,
  type AuthorisableRequest,
  type OpenOrder,
} from '@kc/task-states';

/** Order keys (or ids) per search: a URL of a few KB, far under any server's limit. */
const KEYS_PER_SEARCH = 50;

/** What was recorded of sessions' orders: each session's orders in any status, and the pump's administrations. */
export interface SessionOrders {
  bySession: Map<string, MedicationRequest[]>;
  administrations: MedicationAdministration[];
}

/**
 * Approved sessions' orders in any status, by Task id: those their approvals wrote (by key) and the EHR's they were
 * approved on (by id), in one batch, with what the pump recorded of them when `administrations` is asked for.
 */
export async function sessionOrdersOf(
  fhir: FhirClient,
  sessions: Task[],
  options: { administrations?: boolean } = {},
): Promise<SessionOrders> {
  const found = Object.values(
    await searchEach(fhir, writtenOrdersSearches(sessions, options.administrations ?? false)),
  );
  const orders = found.flatMap((b) => matchesOf<MedicationRequest>(b));
  const keys = sessions.map((t) => ({ id: t.id!, approvedOn: ordersApprovedOn(t) }));
  return { bySession: ordersBySession(orders, keys), administrations: found.flatMap(administrationsIn) };
}

/**
 * The searches, to join a batch, for the orders written for sessions in any status: those their approvals wrote (by
 * key, of the type each authorises: orderTypeOf, medication when it names none) and the EHR's the infusion sessions
 * were approved on (by id); with what the pump recorded of the medication orders when `records` is asked for. Each
 * named `written-…`, every match wanted.
 */
function writtenOrdersSearches(sessions: Task[], records: boolean): NamedSearch[] {
  const typeOf = (task: Task) => orderTypeOf(task) ?? 'MedicationRequest';
  const keysByType = new Map<string, string[]>();
  for (const task of sessions)
    keysByType.set(typeOf(task), [...(keysByType.get(typeOf(task)) ?? []), orderKeySearch(task.id!)]);
  const medication = sessions.filter((t) => typeOf(t) === 'MedicationRequest');
  const approvedOn = [...new Set(medication.flatMap(ordersApprovedOn))].map((r) => r.split('/')[1]);
  const withRecords = (type: string) =>
    records && type === 'MedicationRequest' ? { _revinclude: RECORDS_OF_ORDERS } : {};
  return [
    ...[...keysByType].flatMap(([type, keys]) =>
      chunks(keys).map((k, i) => ({
        name: `written-${type}-${i}`,
        resourceType: type,
        params: { identifier: k.join(',') },
      })),
    ),
    ...chunks(approvedOn).map((ids, i) => ({
      name: `written-on-${i}`,
      resourceType: 'MedicationRequest',
      params: { _id: ids.join(',') },
    })),
  ].map((s) => ({ ...s, params: { ...s.params, ...withRecords(s.resourceType), _count: 200 }, everyMatch: true }));
}

/** The MedicationAdministrations a search included (`_revinclude`). */
export function administrationsIn(bundle: Parameters<typeof includedOf>[0]): MedicationAdministration[] {
  return includedOf<MedicationAdministration>(bundle, 'MedicationAdministration');
}

function chunks(values: string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < values.length; i += KEYS_PER_SEARCH) out.push(values.slice(i, i + KEYS_PER_SEARCH));
  return out;
}

/** Before the earliest of a batch's sessions was planned, a margin for the FHIR server's clock against this one's. */
const CLOCK_MARGIN_MS = 10 * 60_000;

/**
 * Every order approved sessions are still to be given under (active, or held), by Task id, each with what the pump
 * recorded of it (sessionOpenOrder): the open order written here, else the EHR's it was approved on, else the EHR's
 * latest open replacement of those (a dose changed there, at any depth), and every other open order of the session's
 * chain left open beside it. What a hold, a withdrawal, a pause, a rejection or a dose change acts on: the orders that
 * would be given, whoever wrote them. One batch (readSessionOrders). Sessions with no order to give are left out;
 * nothing is read for no Task with an order's proposal.
 */
export async function openOrdersOfSessions(fhir: FhirClient, tasks: Task[]): Promise<Map<string, OpenOrder>> {
  const found = new Map<string, OpenOrder>();
  for (const { task, written, patientOrders, administrations } of await readSessionOrders(fhir, tasks)) {
    const open = sessionOpenOrder(written, patientOrders, administrations);
    if (open) found.set(task.id!, open);
  }
  return found;
}

/** Every order of a session, in any status, and what the pump recorded of them. */
export interface SessionOrderChain {
  orders: AuthorisableRequest[];
  administrations: MedicationAdministration[];
}

/**
 * Every order of sessions' chains in any status, by Task id, with what the pump recorded of each: the orders written
 * for them (here, or the EHR's they were approved on) and the EHR's replacements of those at any depth (orderInEhr).
 * What undoing a closed session acts on: an order given, or closed with it, whoever wrote it. One batch
 * (readSessionOrders); sessions with no order are left out.
 */
export async function sessionOrderChainsOf(fhir: FhirClient, tasks: Task[]): Promise<Map<string, SessionOrderChain>> {
  const found = new Map<string, SessionOrderChain>();
  for (const { task, written, patientOrders, administrations } of await readSessionOrders(fhir, tasks)) {
    const medication = written.filter((o): o is MedicationRequest => o.resourceType === 'MedicationRequest');
    const orders = medication.length ? orderInEhr(medication, patientOrders).chain : written;
    if (!orders.length) continue;
    const refs = new Set(orders.map((o) => `${o.resourceType}/${o.id}`));
    found.set(task.id!, {
      orders,
      administrations: administrations.filter((a) => refs.has(a.request?.reference ?? '')),
    });
  }
  return found;
}

/**
 * The orders of sessions (Tasks with an order's proposal), in one batch: the orders written for them (by key, any
 * status; the EHR's they were approved on, by id) and their patients' orders written since the sessions were planned,
 * with what the pump recorded of them. Per session: its orders written, its patient's orders since, and every record.
 */
async function readSessionOrders(
  fhir: FhirClient,
  tasks: Task[],
): Promise<
  {
    task: Task;
    written: AuthorisableRequest[];
    patientOrders: MedicationRequest[];
    administrations: MedicationAdministration[];
  }[]
> {
  const sessions = tasks.filter((t) => t.id && orderTypeOf(t));
  if (!sessions.length) return [];
  const medication = sessions.filter((t) => orderTypeOf(t) === 'MedicationRequest');
  const searches: NamedSearch[] = [
    ...writtenOrdersSearches(sessions, true),
    ...patientChunks(medication).map((chunk, i) => ({
      name: `since-${i}`,
      resourceType: 'MedicationRequest',
      params: { ...patientsOrdersSince(chunk), _revinclude: RECORDS_OF_ORDERS, _count: 200 },
      everyMatch: true,
    })),
  ];
  const bundles = Object.entries(await searchEach(fhir, searches));
  const administrations = [...new Map(bundles.flatMap(([, b]) => administrationsIn(b)).map((a) => [a.id, a])).values()];
  const since = bundles
    .filter(([name]) => name.startsWith('since-'))
    .flatMap(([, b]) => matchesOf<MedicationRequest>(b));
  const written = bundles
    .filter(([name]) => name.startsWith('written-'))
    .flatMap(([, b]) => matchesOf<AuthorisableRequest>(b));
  written.push(...(await deletedOrdersReplaced(fhir, since, [...since, ...written])));
  const bySession = ordersBySession(
    written,
    sessions.map((t) => ({ id: t.id!, approvedOn: ordersApprovedOn(t) })),
  );
  return sessions.map((task) => ({
    task,
    written: bySession.get(task.id!) ?? [],
    patientOrders: since.filter((o) => o.subject?.reference === task.for?.reference),
    administrations,
  }));
}

/**
 * The orders the EHR's open orders replace (`priorPrescription`) that the batch did not find: deleted on the FHIR
 * server since (an EHR that replaced a session's order, then deleted it). Their last versions, as cancelled (a
 * deletion is read as a cancellation in the EHR), so the replacement is still tied to its session through them: before
 * session 41 it was tied to none, and stayed active after the session was given (clinic day, seed 1789). One read of
 * each one's history, only then (rare).
 */
async function deletedOrdersReplaced(
  fhir: FhirClient,
  patientOrders: MedicationRequest[],
  known: AuthorisableRequest[],
): Promise<MedicationRequest[]> {
  const found = new Set(known.map((o) => `${o.resourceType}/${o.id}`));
  const missing = [
    ...new Set(
      patientOrders
        .filter((o) => isOpenOrder(o) && !orderTaskIdOf(o))
        .flatMap((o) => o.priorPrescription?.reference ?? [])
        .filter((r) => /^MedicationRequest\/[^/]+$/.test(r) && !found.has(r)),
    ),
  ];
  const read = await Promise.all(
    missing.map((r) => fhir.readEvenIfDeleted<MedicationRequest>('MedicationRequest', r.split('/')[1])),
  );
  return read.flatMap((r, i) =>
    r?.deleted ? [{ ...r.resource, id: missing[i].split('/')[1], status: 'cancelled' as const }] : [],
  );
}

/** What the pump recorded of an order, included with it. */
const RECORDS_OF_ORDERS = 'MedicationAdministration:request';

/** The sessions in groups of at most KEYS_PER_SEARCH patients. */
function patientChunks(sessions: Task[]): Task[][] {
  const patients = chunks([...new Set(sessions.flatMap((t) => t.for?.reference ?? []))]);
  return patients.map((group) => sessions.filter((t) => group.includes(t.for?.reference ?? '')));
}

/**
 * The search for these sessions' patients' orders (any status, whoever wrote them) written since the earliest was
 * planned (Task.authoredOn, less CLOCK_MARGIN_MS): every order of theirs and every replacement of one is later. All of
 * the patients' orders when one was approved on the EHR's order (written before it was planned) or has no date.
 */
function patientsOrdersSince(sessions: Task[]): Record<string, string> {
  const planned = sessions.map((t) => (ordersApprovedOn(t).length ? NaN : Date.parse(t.authoredOn ?? '')));
  const earliest = Math.min(...planned);
  return {
    subject: [...new Set(sessions.flatMap((t) => t.for?.reference ?? []))].join(','),
    intent: 'order',
    ...(Number.isFinite(earliest) ? { _lastUpdated: `ge${new Date(earliest - CLOCK_MARGIN_MS).toISOString()}` } : {}),
  };
}

/** How many steps back along `priorPrescription` the orders a replacement replaces are read. */
const REPLACED_STEPS = 4;

/**
 * The orders the EHR's open orders (`open`) replace (`priorPrescription`), read a step at a time back along the chain,
 * with the Tasks approved on them (`Task:based-on`): what replacementsOfOtherSessions needs to tell another session's
 * order replaced in the EHR. One search a step, none for orders that replace none (since session 48 for an approval;
 * since 49 the worklist's note of the EHR's orders for a session's time too). An order the search does not find (the
 * EHR deleted it after replacing it) is read from its history (`lastVersion`), with a search of the Tasks
 * approved on it: since session 50; before, the chain ended there, and another session could be approved on the
 * replacement of a session's deleted order. `search`: the caller's reads (an approval's are coalesced with others').
 */
export async function ordersReplacedBy(
  search: (resourceType: 'MedicationRequest' | 'Task', params: SearchParams) => Promise<Bundle>,
  open: MedicationRequest[],
  lastVersion: (id: string) => Promise<MedicationRequest | undefined>,
): Promise<{ priors: MedicationRequest[]; tasks: Task[] }> {
  const priors: MedicationRequest[] = [];
  const tasks: Task[] = [];
  const read = new Set(open.map((o) => `MedicationRequest/${o.id}`));
  let next = open.flatMap((o) => o.priorPrescription?.reference ?? []);
  for (let step = 0; step < REPLACED_STEPS; step++) {
    const refs = [...new Set(next)].filter((r) => /^MedicationRequest\/[^/]+$/.test(r) && !read.has(r));
    if (!refs.length) break;
    refs.forEach((r) => read.add(r));
    const ids = refs.map((r) => r.slice('MedicationRequest/'.length));
    const found = await search('MedicationRequest', { _id: ids.join(','), _revinclude: 'Task:based-on' });
    const orders = matchesOf<MedicationRequest>(found);
    tasks.push(...includedOf<Task>(found, 'Task'));
    for (const id of ids.filter((gone) => !orders.some((o) => o.id === gone))) {
      const last = await lastVersion(id);
      if (!last) continue;
      orders.push(last);
      tasks.push(...matchesOf<Task>(await search('Task', { 'based-on': `MedicationRequest/${id}`, _count: 20 })));
    }
    priors.push(...orders);
    next = orders.flatMap((o) => o.priorPrescription?.reference ?? []);
  }
  return { priors, tasks };
}

/** An order's last version even when the EHR deleted it (its history): for ordersReplacedBy's `lastVersion`. */
export function orderEvenIfDeleted(fhir: FhirClient): (id: string) => Promise<MedicationRequest | undefined> {
  return async (id) => (await fhir.readEvenIfDeleted<MedicationRequest>('MedicationRequest', id))?.resource;
}

/**
 * The sessions an order found in the EHR stands for (sessionsAlongChain): its own, or, for the EHR's replacement of a
 * session's order (a dose changed there), those of the orders it replaces, read back along the chain only then
 * (ordersReplacedBy). `approvedOnIt`: the Tasks approved on it, as the search that found it included them
 * (`Task:based-on`). With every Task read on the way, to find a session's Task among. For the pump record's job and
 * the undo of a closing that crossed the pump.
 */
export async function sessionsOfOrderInEhr(
  fhir: FhirClient,
  order: MedicationRequest,
  approvedOnIt: Task[],
): Promise<{ session: ReturnType<typeof sessionsAlongChain>; tasks: Task[] }> {
  const replaced =
    order.priorPrescription && !sessionIdsOfOrder(order, approvedOnIt).length
      ? await ordersReplacedBy((type, params) => fhir.search(type, params), [order], orderEvenIfDeleted(fhir))
      : { priors: [], tasks: [] };
  const tasks = [...approvedOnIt, ...replaced.tasks];
  return { session: sessionsAlongChain(order, replaced.priors, tasks), tasks };
}
