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

/** Medications read from the FHIR server for this call, by the reference the order used. */
export type ResolvedMedications = ReadonlyMap<string, Medication>;

/**
 * The Medication an order names: its own code, a contained Medication, one in the draftOrders Bundle, or one read
 * from the FHIR server (`resolved`); 'unresolved' when it names one found nowhere.
 */
function medicationOf(
  order: MedicationRequest,
  bundle?: Bundle,
  resolved?: ResolvedMedications,
): CodeableConcept | undefined | 'unresolved' {
  if (order.medicationCodeableConcept) return order.medicationCodeableConcept;
  const ref = order.medicationReference?.reference;
  if (!ref) return undefined;
  const contained = ref.startsWith('#')
    ? order.contained?.find((r): r is Medication => r.resourceType === 'Medication' && r.id === ref.slice(1))
    : undefined;
  const inBundle = bundle?.entry?.find(
    (e) => e.resource?.resourceType === 'Medication' && (e.fullUrl === ref || `Medication/${e.resource.id}` === ref),
  )?.resource as Medication | undefined;
  const medication = contained ?? inBundle ?? resolved?.get(ref);
  return medication ? medication.code : 'unresolved';
}

export function isKetamineOrder(
  order: MedicationRequest,
  codes: ProductCode[],
  bundle?: Bundle,
  resolved?: ResolvedMedications,
): boolean {
  const medication = medicationOf(order, bundle, resolved);
  return medication !== 'unresolved' && matches(medication, codes);
}

function draftMedicationRequests(draftOrders: Bundle | undefined): MedicationRequest[] {
  return (draftOrders?.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is MedicationRequest => r?.resourceType === 'MedicationRequest');
}

/** The ketamine MedicationRequests among context.draftOrders. */
export function ketamineOrders(
  draftOrders: Bundle | undefined,
  codes: ProductCode[],
  resolved?: ResolvedMedications,
): MedicationRequest[] {
  return draftMedicationRequests(draftOrders).filter((r) => isKetamineOrder(r, codes, draftOrders, resolved));
}

/**
 * The draft orders naming a Medication found nowhere (not contained, not in draftOrders, not in `resolved`): whether
 * they are ketamine cannot be told.
 */
export function unresolvedMedicationOrders(
  draftOrders: Bundle | undefined,
  resolved?: ResolvedMedications,
): MedicationRequest[] {
  return draftMedicationRequests(draftOrders).filter((r) => medicationOf(r, draftOrders, resolved) === 'unresolved');
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
