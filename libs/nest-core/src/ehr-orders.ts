import type { MedicationAdministration, MedicationRequest, Task } from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf, searchEach, type NamedSearch } from '@kc/fhir';
import {
  isOpenOrder,
  openReplacementsOf,
  orderInEhr,
  orderKeySearch,
  ordersApprovedOn,
  ordersBySession,
  orderTaskIdOf,
  replacementOrdersParams,
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
  const keyed = sessions.map((t) => orderKeySearch(t.id!));
  const approvedOn = [...new Set(sessions.flatMap(ordersApprovedOn))].map((r) => r.split('/')[1]);
  const extra = options.administrations ? { _revinclude: 'MedicationAdministration:request' } : {};
  const searches: NamedSearch[] = [
    ...chunks(keyed).map((keys, i) => ({ name: `keyed-${i}`, params: { identifier: keys.join(',') } })),
    ...chunks(approvedOn).map((ids, i) => ({ name: `on-${i}`, params: { _id: ids.join(',') } })),
  ].map(({ name, params }) => ({
    name,
    resourceType: 'MedicationRequest',
    params: { ...params, ...extra, _count: 200 },
    everyMatch: true,
  }));
  const found = Object.values(await searchEach(fhir, searches));
  const orders = found.flatMap((b) => matchesOf<MedicationRequest>(b));
  const keys = sessions.map((t) => ({ id: t.id!, approvedOn: ordersApprovedOn(t) }));
  return { bySession: ordersBySession(orders, keys), administrations: found.flatMap(administrationsIn) };
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

/** The EHR's open order a session is to be given under, with what the pump recorded of it. */
export interface EhrOrder {
  order: MedicationRequest;
  administrations: MedicationAdministration[];
  /**
   * The EHR's other open orders of the session's chain, left open beside it (one replaced twice, the first
   * replacement's cancel never sent): what is done to the order is done to them.
   */
  leftOpen?: EhrOrder[];
}

/**
 * For approved infusion sessions with no open order written here: the EHR's open order each is to be given under, by
 * Task id, with its administrations: the EHR's replacement of the orders written here (a dose changed there:
 * orderInEhr, at any depth), or the order the session was approved on (ordersApprovedOn) or its replacement. A hold, a
 * withdrawal or a pause acts on the order that would be given, whoever wrote it. Two batches, only for such Tasks
 * (their orders, sessionOrdersOf; their patients' orders since).
 */
export async function ehrOrdersOf(fhir: FhirClient, tasks: Task[]): Promise<Map<string, EhrOrder>> {
  const found = new Map<string, EhrOrder>();
  const sessions = tasks.filter((t) => t.id && t.focus?.reference?.startsWith('MedicationRequest/'));
  if (!sessions.length) return found;
  const { bySession } = await sessionOrdersOf(fhir, sessions);
  const written = [...bySession.values()].flat();
  if (!written.length) return found;
  const patients = [...new Set(sessions.flatMap((t) => t.for?.reference ?? []))];
  const { since } = await searchEach(fhir, [
    {
      name: 'since',
      resourceType: 'MedicationRequest',
      params: { ...replacementOrdersParams(patients, written), _revinclude: 'MedicationAdministration:request' },
      everyMatch: true,
    },
  ]);
  const patientOrders = matchesOf<MedicationRequest>(since);
  const administrations = administrationsIn(since);
  for (const task of sessions) {
    const ours = bySession.get(task.id!) ?? [];
    // An open order written here is the one given: the callers read those themselves.
    if (!ours.length || ours.some((o) => isOpenOrder(o) && orderTaskIdOf(o))) continue;
    const { current, chain } = orderInEhr(ours, patientOrders);
    if (!current || orderTaskIdOf(current)) continue;
    const beside = chain
      .filter((o) => o !== current && isOpenOrder(o) && !orderTaskIdOf(o))
      .map((o) => withRecordsOf(o, administrations));
    found.set(task.id!, { ...withRecordsOf(current, administrations), ...(beside.length ? { leftOpen: beside } : {}) });
  }
  return found;
}

/**
 * The search of the patients' open medication orders, with what the pump recorded of them: what
 * replacementsLeftOpenIn reads. One search, to join a batch.
 */
export function patientsOpenOrdersSearch(name: string, patients: string[]): NamedSearch {
  return {
    name,
    resourceType: 'MedicationRequest',
    params: {
      subject: patients.join(','),
      intent: 'order',
      status: 'active,on-hold',
      _revinclude: 'MedicationAdministration:request',
      _count: 200,
    },
    everyMatch: true,
  };
}

/**
 * For each open order written here (`keyed`), the EHR's replacements of it (`priorPrescription`, at any depth) that it
 * left open beside it, its cancel not written (openReplacementsOf), each with what the pump recorded of it, by the
 * order's reference; from the patients' open orders (patientsOpenOrdersSearch). Orders with none are left out.
 */
export function replacementsLeftOpenIn(
  keyed: { resourceType: string; id?: string }[],
  found: Parameters<typeof matchesOf>[0],
): Map<string, EhrOrder[]> {
  const open = matchesOf<MedicationRequest>(found);
  const administrations = administrationsIn(found);
  const left = new Map<string, EhrOrder[]>();
  for (const order of keyed) {
    if (order.resourceType !== 'MedicationRequest') continue;
    const ref = `MedicationRequest/${order.id}`;
    const replacements = openReplacementsOf(new Set([ref]), open).map((r) => withRecordsOf(r, administrations));
    if (replacements.length) left.set(ref, replacements);
  }
  return left;
}

/** replacementsLeftOpenIn, read: one search of the orders' patients' open orders (none for no MedicationRequest). */
export async function replacementsLeftOpenOf(
  fhir: FhirClient,
  keyed: { resourceType: string; id?: string; subject?: { reference?: string } }[],
): Promise<Map<string, EhrOrder[]>> {
  const medication = keyed.filter((o) => o.resourceType === 'MedicationRequest');
  const patients = [...new Set(medication.flatMap((o) => o.subject?.reference ?? []))];
  if (!patients.length) return new Map();
  const { open } = await searchEach(fhir, [patientsOpenOrdersSearch('open', patients)]);
  return replacementsLeftOpenIn(medication, open);
}

/** An order with what the pump recorded of it, among `administrations`. */
function withRecordsOf(order: MedicationRequest, administrations: MedicationAdministration[]): EhrOrder {
  const ref = `MedicationRequest/${order.id}`;
  return { order, administrations: administrations.filter((a) => a.request?.reference === ref) };
}
