import type { Task } from '@medplum/fhirtypes';
import { FhirClient, matchesOf, searchEach, type NamedSearch } from '@kc/fhir';
import type { OpenOrder } from '@kc/followups';
import { orderKeySearch, orderTaskIdOf, type AuthorisableRequest } from '@kc/task-states';
import {
  administrationsIn,
  ehrOrdersOf,
  patientsOpenOrdersSearch,
  replacementsLeftOpenIn,
  type EhrOrder,
} from '@kc/nest-core';
import type { OpenTasks } from './open-tasks';

/** The batch's search of the Tasks' patients' open orders (the EHR's replacements left open among them). */
const PATIENTS_OPEN_ORDERS = 'patients-open-orders';

/**
 * The orders approved Tasks' approvals wrote that are still to be given (active or held; keyed `Task/<id>`, of their
 * proposals' types), each with what the pump recorded of it (`_revinclude`), by Task id: one batch, one search per
 * request type. An infusion whose order the EHR replaced (a dose changed there) has the EHR's open order instead
 * (ehrOrdersOf: two searches more, only for such Tasks). An order written here carries the EHR's replacements of it left
 * open beside it (`leftOpen`: the patients' open orders, searched in the same batch). Nothing is read for no Tasks.
 */
export async function openOrdersOf(
  fhir: FhirClient,
  tasks: Task[],
  proposals: OpenTasks['proposals'],
): Promise<Map<string, OpenOrder>> {
  const orders = new Map<string, OpenOrder>();
  if (!tasks.length) return orders;
  const keysByType = new Map<string, string[]>();
  for (const task of tasks) {
    const type = (task.focus?.reference && proposals.get(task.focus.reference)?.resourceType) ?? 'MedicationRequest';
    keysByType.set(type, [...(keysByType.get(type) ?? []), orderKeySearch(task.id!)]);
  }
  const searches: NamedSearch[] = [...keysByType].map(([type, keys]) => ({
    name: type,
    resourceType: type,
    params: {
      identifier: keys.join(','),
      status: 'active,on-hold',
      _count: 200,
      ...(type === 'MedicationRequest' ? { _revinclude: 'MedicationAdministration:request' } : {}),
    },
    everyMatch: true,
  }));
  const patients = [...new Set(tasks.flatMap((t) => t.for?.reference ?? []))];
  if (keysByType.has('MedicationRequest') && patients.length)
    searches.push(patientsOpenOrdersSearch(PATIENTS_OPEN_ORDERS, patients));
  const found = await searchEach(fhir, searches);
  const written = [...keysByType.keys()].flatMap((type) => matchesOf<AuthorisableRequest>(found[type]));
  const leftOpen = found[PATIENTS_OPEN_ORDERS]
    ? replacementsLeftOpenIn(written, found[PATIENTS_OPEN_ORDERS])
    : new Map<string, EhrOrder[]>();
  for (const type of keysByType.keys()) {
    const administrations = administrationsIn(found[type]);
    for (const order of matchesOf<AuthorisableRequest>(found[type])) {
      const taskId = orderTaskIdOf(order);
      if (!taskId) continue;
      const ref = `${order.resourceType}/${order.id}`;
      orders.set(taskId, {
        order,
        administrations: administrations.filter((a) => a.request?.reference === ref),
        ...(leftOpen.has(ref) ? { leftOpen: leftOpen.get(ref) } : {}),
      });
    }
  }
  const replaced = await ehrOrdersOf(
    fhir,
    tasks.filter((t) => !orders.has(t.id!)),
  );
  for (const [taskId, replacement] of replaced) orders.set(taskId, replacement);
  return orders;
}
