import type { Medication, MedicationAdministration, MedicationRequest, Quantity, Reference } from '@medplum/fhirtypes';
import { orderedRatePerKg } from './rate-titration';
import { sameCoding } from '@kc/task-states';

/**
 * The plan's last infusion as given: the order it was given under and what was recorded at the pump (the
 * MedicationAdministrations of that infusion). A rate titrated during the session, up or down, is recorded there, not
 * on the order; the next session starts at it.
 */
export interface LastGiven {
  /**
   * The order the session was given under: the one its administrations name (the EHR's, when it replaced this
   * service's), else the session's order approved here. Undefined when neither is on record.
   */
  order?: MedicationRequest;
  /** The session's order approved here, when the administrations name another: the weight its rate was computed for. */
  approved?: MedicationRequest;
  /** The infusion's administrations of the ordered drug (whatever order they name, or none). */
  administrations?: MedicationAdministration[];
  /**
   * The Medications the administrations name by reference (`_include:iterate=MedicationAdministration:medication`):
   * the bag, whose concentration turns a pump's mL/h into mg/h. A contained one is read from the administration.
   */
  medications?: Medication[];
}

/** Administrations that record a rate the patient was given (not one entered in error, not done or stopped). */
const GIVEN: ReadonlySet<MedicationAdministration['status']> = new Set(['completed', 'in-progress']);

/**
 * The rate per kg the next session starts from: the last rate given at the pump (with `reference`, the administration
 * it was read from, in words), else the order's (no `reference`). Undefined: no order, or none per kg. `weightKg`: the
 * latest body weight on record, for a rate per hour given under no order that says the weight it was computed for (an
 * infusion recorded without an order, or under an EHR's order in mg/h).
 */
export function rateGiven(
  last: LastGiven | undefined,
  unit: string,
  weightKg?: number,
): { ratePerKg: number; reference?: Reference } | undefined {
  if (!last) return undefined;
  const given = administeredRate(last, unit, weightKg);
  if (given) return { ratePerKg: given.ratePerKg, reference: givenReference(last, unit, given) };
  const ordered = orderedRateOf(last, unit);
  return ordered === undefined ? undefined : { ratePerKg: ordered };
}

/** The rate per kg the session was ordered at: the order given under, else the one approved here. */
function orderedRateOf({ order, approved }: LastGiven, unit: string): number | undefined {
  return (order && orderedRatePerKg(order, unit)) ?? (approved && orderedRatePerKg(approved, unit));
}

/**
 * Where a proposal's rate came from when it is the pump's, as a reference an EHR follows and a clinician reads:
 * "Last session given at 60 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h" (as recorded, per kg, and the order's when it
 * differs).
 */
function givenReference(last: LastGiven, unit: string, given: AdministeredRate): Reference | undefined {
  if (!given.administration.id) return undefined;
  const ordered = orderedRateOf(last, unit);
  return {
    reference: `MedicationAdministration/${given.administration.id}`,
    display: `Last session given at ${rateInWords(given, unit)}${
      ordered !== undefined && ordered !== given.ratePerKg ? `; ordered at ${ordered} ${unit}` : ''
    }`,
  };
}

/** "60 mg/h (0.75 mg/kg/h)", "30 mL/h of 2 mg/mL (0.75 mg/kg/h)", "0.75 mg/kg/h": as recorded, then per kg. */
export function rateInWords(given: AdministeredRate, unit: string): string {
  const recorded = given.administration.dosage?.rateQuantity;
  if (recorded?.code === unit) return `${given.ratePerKg} ${unit}`;
  const of = given.concentration ? ` of ${given.concentration}` : '';
  return `${recorded?.value} ${recorded?.code}${of} (${given.ratePerKg} ${unit})`;
}

export interface AdministeredRate {
  ratePerKg: number;
  administration: MedicationAdministration;
  /** The bag's concentration a rate in mL/h was converted with, in words ("2 mg/mL"). */
  concentration?: string;
}

/**
 * The latest administration (by when it started) and its rate per kg, when it records one: per kg as it is; per hour
 * divided by the weight the order was computed for (its `calculated` rate over its `ordered` one: the order given
 * under, else the one approved here; else `weightKg`); or in mL/h, times the concentration of the bag given (its Medication's
 * ingredient of the ordered drug, in mg per mL), then per kg as per hour; to 0.01. Undefined: none recorded, or in a
 * unit that does not convert (mL/h of a bag whose concentration is not recorded, per hour with no order's weight).
 */
export function administeredRate(last: LastGiven, unit: string, weightKg?: number): AdministeredRate | undefined {
  const latest = latestAdministration((last.administrations ?? []).filter((a) => GIVEN.has(a.status)));
  const rate = latest?.dosage?.rateQuantity;
  if (!latest || typeof rate?.value !== 'number') return undefined;
  if (rate.code === unit) return { ratePerKg: rate.value, administration: latest };
  const kg =
    (last.order && orderWeightKg(last.order, unit)) ??
    (last.approved && orderWeightKg(last.approved, unit)) ??
    weightKg;
  if (!kg) return undefined;
  const perHour = unit.replace('/kg', '');
  if (rate.code === perHour) return { ratePerKg: round2(rate.value / kg), administration: latest };
  const bag = rate.code === 'mL/h' ? concentrationOf(latest, last) : undefined;
  if (!bag || perHour !== `${bag.mass}/h`) return undefined;
  return {
    ratePerKg: round2((rate.value * bag.perMl) / kg),
    administration: latest,
    concentration: `${bag.perMl} ${bag.mass}/mL`,
  };
}

const round2 = (value: number) => Math.round(value * 100) / 100;

/** The administration that started last (`effectivePeriod.start`, else `effectiveDateTime`); none without a time. */
export function latestAdministration(
  administrations: MedicationAdministration[],
): MedicationAdministration | undefined {
  return administrations
    .map((a) => ({ a, at: Date.parse(a.effectivePeriod?.start ?? a.effectiveDateTime ?? '') }))
    .filter(({ at }) => !Number.isNaN(at))
    .sort((x, y) => x.at - y.at)
    .at(-1)?.a;
}

/** The Medication an administration gave by reference: contained (`#id`), else among `medications` (included). */
export function bagOf(administration: MedicationAdministration, medications: Medication[]): Medication | undefined {
  const ref = administration.medicationReference?.reference;
  if (!ref) return undefined;
  return ref.startsWith('#')
    ? administration.contained?.find((c): c is Medication => c.resourceType === 'Medication' && `#${c.id}` === ref)
    : medications.find((m) => `Medication/${m.id}` === ref);
}

/** UCUM masses and volumes a bag's strength may be written in, in mg and mL. */
const MG: Record<string, number> = { g: 1000, mg: 1, ug: 0.001 };
const ML: Record<string, number> = { L: 1000, dL: 100, mL: 1 };

/**
 * The concentration of the ordered drug in the bag an administration gave, in mg per mL: its Medication (contained,
 * or included by reference), the ingredient coded as the order's medication (or the only ingredient).
 */
function concentrationOf(
  administration: MedicationAdministration,
  { order, approved, medications = [] }: LastGiven,
): { perMl: number; mass: 'mg' } | undefined {
  const ingredients = bagOf(administration, medications)?.ingredient ?? [];
  const ordered = [
    ...(order?.medicationCodeableConcept?.coding ?? []),
    ...(approved?.medicationCodeableConcept?.coding ?? []),
  ];
  const ingredient =
    ingredients.find((i) => i.itemCodeableConcept?.coding?.some((c) => ordered.some((o) => sameCoding(c, o)))) ??
    (ingredients.length === 1 ? ingredients[0] : undefined);
  const { numerator, denominator } = ingredient?.strength ?? {};
  const mg = massInMg(numerator);
  const ml = volumeInMl(denominator);
  if (mg === undefined || !ml) return undefined;
  return { perMl: Math.round((mg / ml) * 1000) / 1000, mass: 'mg' };
}

function massInMg(q: Quantity | undefined): number | undefined {
  const factor = q?.code !== undefined ? MG[q.code] : undefined;
  return factor !== undefined && typeof q?.value === 'number' ? q.value * factor : undefined;
}

function volumeInMl(q: Quantity | undefined): number | undefined {
  const factor = q?.code !== undefined ? ML[q.code] : undefined;
  // A denominator of 1 is often left without a value (a Ratio of 2 mg per mL).
  return factor !== undefined ? (q?.value ?? 1) * factor : undefined;
}

/** The weight an order's rate was computed for: its rate per hour (`calculated`) over its rate per kg (`ordered`). */
function orderWeightKg(order: MedicationRequest, unit: string): number | undefined {
  const perKg = orderedRatePerKg(order, unit);
  const perHour = order.dosageInstruction?.[0]?.doseAndRate
    ?.map((d) => d.rateQuantity)
    .find((q) => q?.code === unit.replace('/kg', '') && typeof q.value === 'number')?.value;
  return perKg && perHour ? perHour / perKg : undefined;
}
