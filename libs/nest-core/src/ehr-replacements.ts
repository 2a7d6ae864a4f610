import type { MedicationAdministration, MedicationRequest, Task } from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf, searchEach } from '@kc/fhir';
import { isOpenOrder, orderInEhr, orderKeySearch, orderTaskIdOf, replacementOrdersParams } from '@kc/task-states';

/** Order keys per search: a URL of a few KB, far under any server's limit. */
const KEYS_PER_SEARCH = 50;

/** The EHR's open order replacing a session's, with what the pump recorded of it. */
export interface EhrReplacement {
  order: MedicationRequest;
  administrations: MedicationAdministration[];
}

/**
 * For approved infusion sessions with no open order written here: the EHR's open replacement of their orders (a dose
 * changed there: orderInEhr, at any depth), with its administrations, by Task id. A hold, a withdrawal or a pause acts
 * on the order that would be given, whoever wrote it. Two searches, only for such Tasks (their orders in any status,
 * then their patients' orders since).
 */
export async function ehrReplacements(fhir: FhirClient, tasks: Task[]): Promise<Map<string, EhrReplacement>> {
  const replacements = new Map<string, EhrReplacement>();
  const sessions = tasks.filter((t) => t.id && t.focus?.reference?.startsWith('MedicationRequest/'));
  if (!sessions.length) return replacements;
  const keys = sessions.map((t) => orderKeySearch(t.id!));
  const written: MedicationRequest[] = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_SEARCH)
    written.push(
      ...(await fhir.searchAll<MedicationRequest>('MedicationRequest', {
        identifier: keys.slice(i, i + KEYS_PER_SEARCH).join(','),
      })),
    );
  if (!written.length) return replacements;
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
    const ours = written.filter((o) => orderTaskIdOf(o) === task.id);
    if (!ours.length || ours.some(isOpenOrder)) continue;
    const { current, replacedInEhr } = orderInEhr(ours, patientOrders);
    if (!current || !replacedInEhr) continue;
    const ref = `MedicationRequest/${current.id}`;
    replacements.set(task.id!, {
      order: current,
      administrations: administrations.filter((a) => a.request?.reference === ref),
    });
  }
  return replacements;
}
