import type {
  Bundle,
  CodeableConcept,
  Coding,
  Medication,
  MedicationRequest,
  PlanDefinition,
  Resource,
} from '@medplum/fhirtypes';
import { flattenActions } from '@kc/protocols';

/**
 * Pure: which draft orders are ketamine, by the product codes of the protocols' MedicationRequest
 * ActivityDefinitions in fhir-profiles/ (RxNorm 6130, SNOMED 373464007 today), and which protocols an order
 * belongs to.
 */

export type ProductCode = Pick<Coding, 'system' | 'code'>;

export function ketamineProductCodes(resources: Resource[]): ProductCode[] {
  const codes = new Map<string, ProductCode>();
  for (const r of resources) {
    if (r.resourceType !== 'ActivityDefinition' || r.kind !== 'MedicationRequest') continue;
    for (const c of r.productCodeableConcept?.coding ?? [])
      if (c.code) codes.set(`${c.system ?? ''}|${c.code}`, { system: c.system, code: c.code });
  }
  return [...codes.values()];
}

function matches(concept: CodeableConcept | undefined, codes: ProductCode[]): boolean {
  return Boolean(
    concept?.coding?.some((c) => codes.some((k) => k.code === c.code && (!k.system || k.system === c.system))),
  );
}

/** The Medication an order names: its own code, a contained Medication, or one in the draftOrders Bundle. */
function medicationConcept(order: MedicationRequest, bundle?: Bundle): CodeableConcept | undefined {
  if (order.medicationCodeableConcept) return order.medicationCodeableConcept;
  const ref = order.medicationReference?.reference;
  if (!ref) return undefined;
  const contained = ref.startsWith('#')
    ? order.contained?.find((r): r is Medication => r.resourceType === 'Medication' && r.id === ref.slice(1))
    : undefined;
  const inBundle = bundle?.entry?.find(
    (e) => e.resource?.resourceType === 'Medication' && (e.fullUrl === ref || `Medication/${e.resource.id}` === ref),
  )?.resource as Medication | undefined;
  return (contained ?? inBundle)?.code;
}

export function isKetamineOrder(order: MedicationRequest, codes: ProductCode[], bundle?: Bundle): boolean {
  return matches(medicationConcept(order, bundle), codes);
}

/** The ketamine MedicationRequests among context.draftOrders. */
export function ketamineOrders(draftOrders: Bundle | undefined, codes: ProductCode[]): MedicationRequest[] {
  return (draftOrders?.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is MedicationRequest => r?.resourceType === 'MedicationRequest')
    .filter((r) => isKetamineOrder(r, codes, draftOrders));
}

/**
 * The protocols an order belongs to: those whose canonical, or one of whose actions' ActivityDefinition, the
 * order instantiates. An order that names none of them is checked against every protocol.
 */
export function protocolsForOrder(order: MedicationRequest, plans: PlanDefinition[]): PlanDefinition[] {
  const named = (order.instantiatesCanonical ?? []).map((c) => c.split('|')[0]);
  if (!named.length) return plans;
  const matching = plans.filter(
    (plan) =>
      named.includes(plan.url ?? '') ||
      flattenActions(plan.action ?? []).some(
        (a) => a.definitionCanonical && named.includes(a.definitionCanonical.split('|')[0]),
      ),
  );
  return matching.length ? matching : plans;
}

/** "Patient/123" from an order's subject, for a relative or absolute reference. */
export function patientIdOf(order: MedicationRequest): string | undefined {
  return /(?:^|\/)Patient\/([^/]+)$/.exec(order.subject?.reference ?? '')?.[1];
}
