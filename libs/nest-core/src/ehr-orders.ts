import type { MedicationAdministration, MedicationRequest, Task } from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf, searchEach } from '@kc/fhir';
import {
  isOpenOrder,
  orderInEhr,
  orderKeySearch,
  ordersApprovedOn,
  orderTaskIdOf,
  replacementOrdersParams,
} from '@kc/task-states';

/** Order keys per search: a URL of a few KB, far under any server's limit. */
const KEYS_PER_SEARCH = 50;

/** The EHR's open order a session is to be given under, with what the pump recorded of it. */
export interface EhrOrder {
  order: MedicationRequest;
  administrations: MedicationAdministration[];
}

/**
 * For approved infusion sessions with no open order written here: the EHR's open order each is to be given under, by
 * Task id, with its administrations: the EHR's replacement of the orders written here (a dose changed there:
 * orderInEhr, at any depth), or the order the session was approved on (ordersApprovedOn) or its replacement. A hold, a
 * withdrawal or a pause acts on the order that would be given, whoever wrote it. Three searches at most, only for such
 * Tasks (their orders written here in any status, those they were approved on, their patients' orders since).
 */
export async function ehrOrdersOf(fhir: FhirClient, tasks: Task[]): Promise<Map<string, EhrOrder>> {
  const found = new Map<string, EhrOrder>();
  const sessions = tasks.filter((t) => t.id && t.focus?.reference?.startsWith('MedicationRequest/'));
  if (!sessions.length) return found;
  const keys = sessions.map((t) => orderKeySearch(t.id!));
  const written: MedicationRequest[] = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_SEARCH)
    written.push(
      ...(await fhir.searchAll<MedicationRequest>('MedicationRequest', {
        identifier: keys.slice(i, i + KEYS_PER_SEARCH).join(','),
      })),
    );
  const approvedOn = [...new Set(sessions.flatMap(ordersApprovedOn))].map((r) => r.split('/')[1]);
  for (let i = 0; i < approvedOn.length; i += KEYS_PER_SEARCH)
    written.push(
      ...(await fhir.searchAll<MedicationRequest>('MedicationRequest', {
        _id: approvedOn.slice(i, i + KEYS_PER_SEARCH).join(','),
      })),
    );
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
  const administrations = includedOf<MedicationAdministration>(since).filter(
    (r) => r.resourceType === 'MedicationAdministration',
  );
  for (const task of sessions) {
    const onOrders = new Set(ordersApprovedOn(task));
    const ours = written.filter((o) => orderTaskIdOf(o) === task.id || onOrders.has(`MedicationRequest/${o.id}`));
    // An open order written here is the one given: the callers read those themselves.
    if (!ours.length || ours.some((o) => isOpenOrder(o) && orderTaskIdOf(o))) continue;
    const { current } = orderInEhr(ours, patientOrders);
    if (!current || orderTaskIdOf(current)) continue;
    const ref = `MedicationRequest/${current.id}`;
    found.set(task.id!, {
      order: current,
      administrations: administrations.filter((a) => a.request?.reference === ref),
    });
  }
  return found;
}
