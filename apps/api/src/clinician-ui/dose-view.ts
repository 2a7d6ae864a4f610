import type { Bundle, MedicationRequest, Observation, PlanDefinition } from '@medplum/fhirtypes';
import type { NamedSearch } from '@kc/fhir';
import {
  flattenActions,
  orderedRatePerKg,
  patientDataQueries,
  rateTitrationOf,
  type ProtocolCatalog,
  type RateTitration,
} from '@kc/protocols';

/**
 * What a clinician approving an infusion sees of its dose: the rate per kg approving it as proposed orders, the range
 * the protocol lets them order instead (titration to response), and the body weight on record now, which the order's
 * rate in mg/h is computed from when they approve.
 */
export interface DoseView {
  ratePerKg: number;
  /** UCUM, e.g. mg/kg/h. */
  unit: string;
  low: number;
  high: number;
  /** The latest body weight on record (kg) and when it was taken; absent: none on record (no rate per kg can be ordered). */
  weightKg?: number;
  weighed?: string;
}

/** How an item's dose is read: its titration, and the search for its patient's latest weight (the protocol's input). */
export interface DoseReading {
  titration: RateTitration;
  weight?: NamedSearch;
}

/**
 * The titration of the infusion a worklist item's Task approves (its protocol action's ActivityDefinition), and the
 * weight search the approval itself reads (the PlanDefinition input the titration names). Undefined for any other Task.
 */
export function doseReadingFor(
  catalog: ProtocolCatalog,
  plan: PlanDefinition | undefined,
  item: { action?: string; patient?: string; request?: string },
): DoseReading | undefined {
  if (!plan || !item.action || !item.request?.startsWith('MedicationRequest/')) return undefined;
  const action = flattenActions(plan.action ?? []).find((a) => a.id === item.action);
  const titration = rateTitrationOf(catalog.activityDefinition(action?.definitionCanonical));
  if (!titration) return undefined;
  const patientId = /^Patient\/([^/]+)$/.exec(item.patient ?? '')?.[1];
  const query = patientId
    ? patientDataQueries(plan, patientId).find((q) => q.name === titration.weightInput)
    : undefined;
  return { titration, weight: query && { ...query, name: `weight ${item.patient}` } };
}

/** The dose view from the proposal (its rate per kg: the start, or the rate last given) and the weight search's answer. */
export function doseView(
  { titration }: DoseReading,
  proposal: MedicationRequest | undefined,
  weights: Bundle | undefined,
): DoseView {
  const latest = weights?.entry?.map((e) => e.resource as Observation | undefined).find(Boolean);
  const kg = latest?.valueQuantity?.code === 'kg' ? latest.valueQuantity.value : undefined;
  return {
    ratePerKg: orderedRatePerKg(proposal, titration.unit) ?? titration.start,
    unit: titration.unit,
    low: titration.low,
    high: titration.high,
    ...(kg !== undefined ? { weightKg: kg, weighed: latest?.effectiveDateTime ?? latest?.issued } : {}),
  };
}
