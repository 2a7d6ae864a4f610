import type {
  ActivityDefinition,
  Bundle,
  Dosage,
  Duration,
  MedicationRequest,
  Observation,
  Range,
  Reference,
} from '@medplum/fhirtypes';
import { CANONICAL_BASE } from './canonical';
import { clinicDay, UTC_ZONE } from './clinic-time';
import { bolusDosage, bolusRefusal, type BolusLimit } from './bolus';
import { orderedValue } from './dose-rate';
import { applyDynamicValues } from './dynamic-values';
import type { ProtocolVariables } from './fhirpath-variables';

/** An infusion's rate per kg and the range a clinician may order it in (fhir-profiles/StructureDefinition-rate-titration.json). */
export const RATE_TITRATION_EXTENSION = `${CANONICAL_BASE}/StructureDefinition/rate-titration`;
/** The variable an ActivityDefinition's dynamicValues read the rate per kg from. */
export const RATE_PER_KG_VARIABLE = 'ratePerKg';

export interface RateTitration {
  /** The UCUM code every rate is in (mg/kg/h). */
  unit: string;
  start: number;
  low: number;
  high: number;
  /** The PlanDefinition input (DataRequirement.id) giving the body weight the rate is multiplied by. */
  weightInput?: string;
  /** The bolus per kg a clinician may order at the infusion's start; none when the protocol declares none. */
  bolus?: BolusLimit;
  /** How recent the body weight should be, in days (`weightWithin`): an older one is used, with advice to weigh. */
  weightWithinDays?: number;
}

/** The titration an ActivityDefinition declares; undefined when it has none or it is incomplete (no titration then). */
export function rateTitrationOf(activity: ActivityDefinition | undefined): RateTitration | undefined {
  const extension = activity?.extension?.find((e) => e.url === RATE_TITRATION_EXTENSION);
  const part = (url: string) => extension?.extension?.find((e) => e.url === url);
  const start = part('start')?.valueQuantity;
  const range = part('range')?.valueRange;
  const unit = start?.code;
  if (!unit || start.value === undefined || range?.low?.value === undefined || range.high?.value === undefined)
    return undefined;
  if (range.low.code !== unit || range.high.code !== unit) return undefined;
  const weightInput = part('weight')?.valueId;
  const bolus = bolusLimitOf(part('bolus')?.valueRange);
  const weightWithinDays = daysOf(part('weightWithin')?.valueDuration);
  return {
    unit,
    start: start.value,
    low: range.low.value,
    high: range.high.value,
    ...(weightInput ? { weightInput } : {}),
    ...(bolus ? { bolus } : {}),
    ...(weightWithinDays !== undefined ? { weightWithinDays } : {}),
  };
}

/** A UCUM duration in days (d, wk); undefined for any other unit, so a duration it cannot read asks for nothing. */
function daysOf(duration: Duration | undefined): number | undefined {
  const per: Record<string, number> = { d: 1, wk: 7 };
  const days = duration?.code && per[duration.code];
  return days && duration.value !== undefined && duration.value > 0 ? duration.value * days : undefined;
}

/**
 * Advice when the body weight a rate is computed from is older than the protocol wants (`weightWithin`) now, when the
 * dose is ordered (as order entry judges a dosing weight; judged against the session's date, every booster proposed
 * weeks ahead would carry it): the weight is still used (the latest on record), and whoever approves or gives the
 * session is asked to weigh the patient first.
 */
export function weightNotice(
  titration: RateTitration,
  weighed: string | undefined,
  now: Date,
  zone: string = UTC_ZONE,
): string | undefined {
  const days = titration.weightWithinDays;
  const taken = Date.parse(weighed ?? '');
  if (days === undefined || Number.isNaN(taken) || now.getTime() - taken <= days * 24 * 60 * 60 * 1000)
    return undefined;
  return `Weighed ${clinicDay(weighed, zone)}, more than ${days} days ago: weigh the patient before the session (the rate in mg/h is computed from the latest weight)`;
}

function bolusLimitOf(range: Range | undefined): BolusLimit | undefined {
  const unit = range?.high?.code;
  if (!unit || range?.high?.value === undefined) return undefined;
  if (range.low && (range.low.code !== unit || range.low.value === undefined)) return undefined;
  return { unit, high: range.high.value, ...(range.low ? { low: range.low.value } : {}) };
}

const within = (t: RateTitration, value: number) => value >= t.low && value <= t.high;

/** The rate a request is proposed at: the one last ordered for the plan when it is within this range, else the start. */
export function rateToPropose(titration: RateTitration, lastOrdered?: number): number {
  return lastOrdered !== undefined && within(titration, lastOrdered) ? lastOrdered : titration.start;
}

/** Why a clinician cannot order this rate (a sentence for a 422), or undefined when it is within the protocol's range. */
export function rateRefusal(titration: RateTitration, asked: { value: number; unit: string }): string | undefined {
  const range = `${titration.low}-${titration.high} ${titration.unit}`;
  if (asked.unit !== titration.unit)
    return `The rate is ordered in ${titration.unit} (this infusion's range: ${range})`;
  if (!Number.isFinite(asked.value) || !within(titration, asked.value))
    return `The rate must be within ${range}, this infusion's range in its protocol; ${asked.value} ${asked.unit} is outside it`;
  return undefined;
}

/**
 * The latest body weight in kg of a weight input's searchset (latest first), when it was taken and its Observation's
 * id: what the approval, the page and order-sign judge a rate per kg at.
 */
export function latestWeightKg(bundle: Bundle | undefined): { kg: number; when?: string; id?: string } | undefined {
  const latest = bundle?.entry?.map((e) => e.resource).find((r): r is Observation => r?.resourceType === 'Observation');
  const q = latest?.valueQuantity;
  if (q?.code !== 'kg' || typeof q.value !== 'number') return undefined;
  return {
    kg: q.value,
    ...(latest?.effectiveDateTime || latest?.issued ? { when: latest.effectiveDateTime ?? latest.issued } : {}),
    ...(latest?.id ? { id: latest.id } : {}),
  };
}

/** The latest body weight the titration's input read from the patient's data. */
export function weightForTitration(
  titration: RateTitration,
  variables: ProtocolVariables,
): ReturnType<typeof latestWeightKg> {
  const found = titration.weightInput ? variables[titration.weightInput] : undefined;
  return latestWeightKg(typeof found === 'object' && found.resourceType === 'Bundle' ? found : undefined);
}

/** The weight a dose was computed from, as a reference an EHR follows: "Body weight 64 kg (2026-12-01)". */
function weighedOn(weight: ReturnType<typeof latestWeightKg>, zone: string): { weighed?: Reference } {
  if (!weight?.id) return {};
  const day = clinicDay(weight.when, zone);
  return {
    weighed: { reference: `Observation/${weight.id}`, display: `Body weight ${weight.kg} kg${day ? ` (${day})` : ''}` },
  };
}

/** The rate per kg a request was proposed or ordered at (its `ordered` doseAndRate in that unit), if it says. */
export function orderedRatePerKg(request: MedicationRequest | undefined, unit: string): number | undefined {
  return orderedValue(request, 'rateQuantity', unit);
}

export interface TitratedDosage {
  dosageInstruction: Dosage[];
  /** Values the patient's data could not give (no body weight on record): the dose would be incomplete. */
  unresolved: { path: string; description?: string }[];
}

/**
 * The dosage an order at this rate per kg gives, from the patient's data as it is now: the ActivityDefinition's
 * dosage with its dynamicValues on the dosage evaluated again (the rate in mg/h from the latest body weight, the
 * words). The timing is the request's own (its window), kept from the one it replaces.
 */
export function dosageAtRate(
  activity: ActivityDefinition,
  ratePerKg: number,
  variables: ProtocolVariables,
  current: Dosage[] | undefined,
): TitratedDosage {
  const onDosage = (activity.dynamicValue ?? []).filter((d) => d.path?.startsWith('dosageInstruction'));
  const { resource, unresolved } = applyDynamicValues(
    { resourceType: 'MedicationRequest', dosageInstruction: activity.dosage ?? [] },
    onDosage,
    { ...variables, [RATE_PER_KG_VARIABLE]: ratePerKg },
    `ActivityDefinition/${activity.id}`,
  );
  const dosageInstruction = (resource.dosageInstruction ?? []).map((d, i) => {
    const timing = current?.[i]?.timing ?? d.timing;
    return timing ? { ...d, timing } : d;
  });
  return { dosageInstruction, unresolved };
}

export interface DosageToOrderInput {
  /** The proposal an approval orders. */
  proposal: { resourceType: string; dosageInstruction?: Dosage[] };
  /** The ActivityDefinition it instantiates, when known (a plan applied inline has none to read again). */
  activity?: ActivityDefinition;
  /** The rate per kg the approving clinician asked for, if any. */
  asked?: { value: number; unit: string };
  /** The bolus per kg at the infusion's start the approving clinician asked for, if any (none is proposed). */
  bolus?: { value: number; unit: string };
  /** The patient's data as read at approval, when read. */
  variables?: ProtocolVariables;
  /** When the dose is ordered (how old the weight is is judged against it). */
  now?: Date;
  /** The clinic's time zone: the days the order's words name. UTC unless given. */
  zone?: string;
}

/**
 * What an approval orders for a titrated infusion: the rate per kg asked for (within the protocol's range), else the
 * proposal's, given at that rate times the body weight on record now (weeks may have passed since the proposal),
 * and the bolus asked for (within the protocol's ceiling) as a second dosage at the same weight.
 * `dosage` undefined: the proposal's dosage is ordered as it is (not titrated, or no weight on record now and nothing
 * asked). `refusal`: why the rate or the bolus asked for cannot be ordered.
 */
export function dosageToOrder(input: DosageToOrderInput): {
  dosage?: Dosage[];
  /** The weight the dose was computed from (the Observation, named in words), for the order's supportingInformation. */
  weighed?: Reference;
  /** That weight is older than the protocol wants (weightNotice): for the order's note. */
  weightNotice?: string;
  refusal?: string;
} {
  const { proposal, activity, asked, bolus, variables } = input;
  const titration = proposal.resourceType === 'MedicationRequest' ? rateTitrationOf(activity) : undefined;
  if (!titration) {
    if (asked) return { refusal: 'This task orders nothing given at a rate per kg: approve it without a rate' };
    return bolus ? { refusal: 'This task orders nothing given per kg: approve it without a bolus' } : {};
  }
  const refusal = (asked && rateRefusal(titration, asked)) || (bolus && bolusRefusal(titration.bolus, bolus));
  if (refusal) return { refusal };
  const askedSomething = Boolean(asked || bolus);
  if (!variables)
    return askedSomething
      ? { refusal: "The patient's data could not be read again, so no other rate or bolus can be ordered" }
      : {};
  const rate = asked?.value ?? orderedRatePerKg(proposal as MedicationRequest, titration.unit) ?? titration.start;
  const { dosageInstruction, unresolved } = dosageAtRate(activity!, rate, variables, proposal.dosageInstruction);
  const weight = weightForTitration(titration, variables);
  if (!unresolved.length && (!bolus || weight)) {
    const withBolus = bolus
      ? [
          ...dosageInstruction,
          bolusDosage({
            limit: titration.bolus!,
            perKg: bolus.value,
            weightKg: weight!.kg,
            infusion: dosageInstruction[0],
          }),
        ]
      : dosageInstruction;
    const zone = input.zone ?? UTC_ZONE;
    const notice = weight && weightNotice(titration, weight.when, input.now ?? new Date(), zone);
    return { dosage: withBolus, ...weighedOn(weight, zone), ...(notice ? { weightNotice: notice } : {}) };
  }
  if (!askedSomething) return {};
  const missing = unresolved.length
    ? unresolved.map((u) => u.description ?? u.path).join('; ')
    : 'the latest body weight (kg)';
  return {
    refusal: `The ${asked ? 'rate' : 'bolus'} per kg cannot be turned into a dose for this patient (could not compute: ${missing}); record a body weight in kg, then approve`,
  };
}
