import type { MedicationAdministration, MedicationRequest, Reference } from '@medplum/fhirtypes';
import { orderedRatePerKg } from './rate-titration';

/**
 * The plan's last infusion as given: the order it was given under and what was recorded at the pump (the
 * MedicationAdministrations of that order). A rate titrated during the session, up or down, is recorded there, not on
 * the order; the next session starts at it.
 */
export interface LastGiven {
  order: MedicationRequest;
  administrations?: MedicationAdministration[];
}

/** Administrations that record a rate the patient was given (not one entered in error, not done or stopped). */
const GIVEN: ReadonlySet<MedicationAdministration['status']> = new Set(['completed', 'in-progress']);

/** The rate per kg the next session is proposed at: the last rate given at the pump, else the order's. */
export function ratePerKgGiven(last: LastGiven | undefined, unit: string): number | undefined {
  if (!last) return undefined;
  return administeredRate(last, unit)?.ratePerKg ?? orderedRatePerKg(last.order, unit);
}

/** The rate per kg of the order's latest administration, when it records one that converts (see administeredRate). */
export function administeredRatePerKg(last: LastGiven, unit: string): number | undefined {
  return administeredRate(last, unit)?.ratePerKg;
}

/**
 * Where a proposal's rate came from when it is the pump's, as a reference an EHR follows and a clinician reads:
 * "Last session given at 60 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h". Undefined when the rate is the order's.
 */
export function rateGivenReference(last: LastGiven | undefined, unit: string): Reference | undefined {
  if (!last) return undefined;
  const given = administeredRate(last, unit);
  if (!given?.administration.id) return undefined;
  const recorded = given.administration.dosage?.rateQuantity;
  const asRecorded = recorded?.code === unit ? '' : `${recorded?.value} ${recorded?.code} (`;
  const ordered = orderedRatePerKg(last.order, unit);
  return {
    reference: `MedicationAdministration/${given.administration.id}`,
    display: `Last session given at ${asRecorded}${given.ratePerKg} ${unit}${asRecorded ? ')' : ''}${
      ordered !== undefined && ordered !== given.ratePerKg ? `; ordered at ${ordered} ${unit}` : ''
    }`,
  };
}

/**
 * The order's latest administration (by when it started) and its rate per kg, when it records one: per kg as it is,
 * or per hour divided by the weight the order was computed for (its `calculated` rate over its `ordered` one), to
 * 0.01. Undefined: none recorded, or in a unit that does not convert (mL/h needs the bag's concentration).
 */
function administeredRate(
  { order, administrations = [] }: LastGiven,
  unit: string,
): { ratePerKg: number; administration: MedicationAdministration } | undefined {
  const reference = `MedicationRequest/${order.id}`;
  const latest = administrations
    .filter((a) => a.request?.reference === reference && GIVEN.has(a.status))
    .map((a) => ({ a, at: Date.parse(a.effectivePeriod?.start ?? a.effectiveDateTime ?? '') }))
    .filter(({ at }) => !Number.isNaN(at))
    .sort((x, y) => x.at - y.at)
    .at(-1)?.a;
  const rate = latest?.dosage?.rateQuantity;
  if (!latest || typeof rate?.value !== 'number') return undefined;
  if (rate.code === unit) return { ratePerKg: rate.value, administration: latest };
  const kg = orderWeightKg(order, unit);
  if (rate.code !== unit.replace('/kg', '') || !kg) return undefined;
  return { ratePerKg: Math.round((rate.value / kg) * 100) / 100, administration: latest };
}

/** The weight an order's rate was computed for: its rate per hour (`calculated`) over its rate per kg (`ordered`). */
function orderWeightKg(order: MedicationRequest, unit: string): number | undefined {
  const perKg = orderedRatePerKg(order, unit);
  const perHour = order.dosageInstruction?.[0]?.doseAndRate
    ?.map((d) => d.rateQuantity)
    .find((q) => q?.code === unit.replace('/kg', '') && typeof q.value === 'number')?.value;
  return perKg && perHour ? perHour / perKg : undefined;
}
