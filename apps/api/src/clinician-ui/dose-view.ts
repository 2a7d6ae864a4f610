import type { Bundle, MedicationRequest } from '@medplum/fhirtypes';
import type { NamedSearch } from '@kc/fhir';
import {
  activityDefinitionIn,
  flattenActions,
  latestWeightKg,
  orderedBolusPerKg,
  orderedRatePerKg,
  patientDataQueries,
  rateTitrationOf,
  weightNotice,
  type RateTitration,
  type ResolvedPlan,
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
  /** The bolus per kg the protocol lets them add at the infusion's start (none is proposed); absent: none allowed. */
  bolus?: { unit: string; high: number; low?: number };
  /** The bolus per kg the request gives (an order on the to-do list; none is proposed), in `bolus.unit`. */
  bolusPerKg?: number;
  /**
   * Why the proposal is at this rate when it is the one the pump gave last session (the administration it names):
   * "Last session given at 60 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h".
   */
  lastGiven?: string;
  /** The weight is older than the protocol wants (weightNotice): weigh the patient before the session. */
  weightNotice?: string;
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
  protocol: ResolvedPlan | undefined,
  item: { action?: string; patient?: string; request?: string },
): DoseReading | undefined {
  if (!protocol || !item.action || !item.request?.startsWith('MedicationRequest/')) return undefined;
  const { plan, definitions } = protocol;
  const action = flattenActions(plan.action ?? []).find((a) => a.id === item.action);
  const titration = rateTitrationOf(activityDefinitionIn(definitions, action?.definitionCanonical));
  if (!titration) return undefined;
  const patientId = /^Patient\/([^/]+)$/.exec(item.patient ?? '')?.[1];
  const query = patientId
    ? patientDataQueries(plan, patientId).find((q) => q.name === titration.weightInput)
    : undefined;
  return { titration, weight: query && { ...query, name: `weight ${item.patient}` } };
}

/**
 * The dose view from the request (a proposal: its rate per kg, the start or the rate last given; an order: the rate and
 * bolus it gives) and the weight search's answer.
 */
export function doseView(
  { titration }: DoseReading,
  request: MedicationRequest | undefined,
  weights: Bundle | undefined,
  now = new Date(),
  zone?: string,
): DoseView {
  const weight = latestWeightKg(weights);
  const notice = weight && weightNotice(titration, weight.when, now, zone);
  const bolusPerKg = titration.bolus && orderedBolusPerKg(request, titration.bolus.unit);
  return {
    ratePerKg: orderedRatePerKg(request, titration.unit) ?? titration.start,
    unit: titration.unit,
    low: titration.low,
    high: titration.high,
    ...(weight ? { weightKg: weight.kg, weighed: weight.when } : {}),
    ...(titration.bolus ? { bolus: titration.bolus } : {}),
    ...(bolusPerKg !== undefined ? { bolusPerKg } : {}),
    ...lastGivenOf(request),
    ...(notice ? { weightNotice: notice } : {}),
  };
}

/** The administration a proposal names as where its rate came from, in words. */
function lastGivenOf(proposal: MedicationRequest | undefined): { lastGiven?: string } {
  const given = proposal?.supportingInformation?.find((r) => r.reference?.startsWith('MedicationAdministration/'));
  return given?.display ? { lastGiven: given.display } : {};
}
