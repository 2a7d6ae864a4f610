import type { BundleEntry } from '@medplum/fhirtypes';
import type { FhirClient } from '@kc/fhir';
import { TASK_KEY_SYSTEM } from '@kc/protocols';

/** BENCH_QUICK=1: small sizes, for CI (the benches must not rot); the targets are judged on full runs. */
export const QUICK = process.env.BENCH_QUICK === '1';

const PLAN = 'https://ketamine-careplans.example/fhir/PlanDefinition/ketamine-low-dose-series|1.0.0';
const STATE = 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans';
const DAY = 86_400_000;

export interface Preloaded {
  patients: number;
  carePlans: string[];
  tasks: number;
  medicationRequests: number;
}

/**
 * Grows the store to the given sizes with resources shaped like the service's own (Tasks with a key identifier,
 * based on a CarePlan, for a patient, a due window; draft = awaiting approval), 500 creates per transaction.
 * Written by another client, as an EHR or an earlier deployment would have: the worklist index learns of them
 * through its reconciliation (rebuild), not through writes.
 */
export async function preload(
  fhir: FhirClient,
  target: { tasks: number; medicationRequests?: number; carePlans?: number; openShare?: number },
  have: Preloaded = { patients: 0, carePlans: [], tasks: 0, medicationRequests: 0 },
): Promise<Preloaded> {
  const state = { ...have, carePlans: [...have.carePlans] };
  const wantPlans = Math.max(target.carePlans ?? 0, state.carePlans.length, 1);
  while (state.carePlans.length < wantPlans) {
    const n = Math.min(250, wantPlans - state.carePlans.length);
    const entries: BundleEntry[] = [];
    for (let i = 0; i < n; i++) {
      const patientUrl = `urn:uuid:${crypto.randomUUID()}`;
      entries.push({
        fullUrl: patientUrl,
        resource: { resourceType: 'Patient', name: [{ family: `Preloaded ${state.patients + i}` }] },
        request: { method: 'POST', url: 'Patient' },
      });
      entries.push({
        resource: {
          resourceType: 'CarePlan',
          status: 'active',
          intent: 'plan',
          subject: { reference: patientUrl },
          instantiatesCanonical: [PLAN],
        },
        request: { method: 'POST', url: 'CarePlan' },
      });
    }
    const response = await fhir.transaction(entries);
    for (const e of response.entry ?? [])
      if (e.resource?.resourceType === 'CarePlan')
        state.carePlans.push(`${e.resource.id}|${e.resource.subject.reference}`);
    state.patients += n;
  }
  const now = Date.now();
  while (state.tasks < target.tasks) {
    const n = Math.min(500, target.tasks - state.tasks);
    const entries: BundleEntry[] = [];
    for (let i = 0; i < n; i++) {
      const k = state.tasks + i;
      const [carePlan, patient] = state.carePlans[k % state.carePlans.length].split('|');
      const open = (k % 100) / 100 < (target.openShare ?? 0.2);
      const start = now + ((k * 7919) % 60) * DAY - 20 * DAY;
      entries.push({
        resource: {
          resourceType: 'Task',
          identifier: [{ system: TASK_KEY_SYSTEM, value: `preload:${k}` }],
          status: open ? 'draft' : 'completed',
          intent: 'plan',
          for: { reference: patient },
          basedOn: [{ reference: `CarePlan/${carePlan}` }],
          description: 'Preloaded follow-up',
          businessStatus: { coding: [{ system: STATE, code: open ? 'awaiting-approval' : 'done' }] },
          restriction: {
            period: { start: new Date(start).toISOString(), end: new Date(start + 3 * DAY).toISOString() },
          },
        },
        request: { method: 'POST', url: 'Task' },
      });
    }
    await fhir.transaction(entries);
    state.tasks += n;
  }
  while (state.medicationRequests < (target.medicationRequests ?? 0)) {
    const n = Math.min(500, target.medicationRequests! - state.medicationRequests);
    const entries: BundleEntry[] = [];
    for (let i = 0; i < n; i++) {
      const k = state.medicationRequests + i;
      const [carePlan, patient] = state.carePlans[k % state.carePlans.length].split('|');
      entries.push({
        resource: {
          resourceType: 'MedicationRequest',
          identifier: [{ system: TASK_KEY_SYSTEM, value: `preload-mr:${k}` }],
          status: 'draft',
          intent: 'proposal',
          subject: { reference: patient },
          basedOn: [{ reference: `CarePlan/${carePlan}` }],
          medicationCodeableConcept: {
            coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '6130' }],
          },
        },
        request: { method: 'POST', url: 'MedicationRequest' },
      });
    }
    await fhir.transaction(entries);
    state.medicationRequests += n;
  }
  return state;
}
