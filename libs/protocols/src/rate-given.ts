import type { MedicationAdministration, MedicationRequest } from '@medplum/fhirtypes';
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
  return administeredRatePerKg(last, unit) ?? orderedRatePerKg(last.order, unit);
}

/**
 * The rate per kg of the order's latest administration (by when it started), when it records one: per kg as it is,
 * or per hour divided by the weight the order was computed for (its `calculated` rate over its `ordered` one), to
 * 0.01. Undefined: none recorded, or in a unit that does not convert (mL/h needs the bag's concentration).
 */
export function administeredRatePerKg({ order, administrations = [] }: LastGiven, unit: string): number | undefined {
  const reference = `MedicationRequest/${order.id}`;
  const latest = administrations
    .filter((a) => a.request?.reference === reference && GIVEN.has(a.status))
    .map((a) => ({ a, at: Date.parse(a.effectivePeriod?.start ?? a.effectiveDateTime ?? '') }))
    .filter(({ at }) => !Number.isNaN(at))
    .sort((x, y) => x.at - y.at)
    .at(-1)?.a;
  const rate = latest?.dosage?.rateQuantity;
  if (typeof rate?.value !== 'number') return undefined;
  if (rate.code === unit) return rate.value;
  const perHourUnit = unit.replace('/kg', '');
  const kg = orderWeightKg(order, unit);
  return rate.code === perHourUnit && kg ? Math.round((rate.value / kg) * 100) / 100 : undefined;
}

/** The weight an order's rate was computed for: its rate per hour (`calculated`) over its rate per kg (`ordered`). */
function orderWeightKg(order: MedicationRequest, unit: string): number | undefined {
  const perKg = orderedRatePerKg(order, unit);
  const perHour = order.dosageInstruction?.[0]?.doseAndRate
    ?.map((d) => d.rateQuantity)
    .find((q) => q?.code === unit.replace('/kg', '') && typeof q.value === 'number')?.value;
  return perKg && perHour ? perHour / perKg : undefined;
}
