import type { Dosage, MedicationRequest, Quantity } from '@medplum/fhirtypes';
import { doseRateType, orderedValue } from './dose-rate';

const UCUM = 'http://unitsofmeasure.org';

/**
 * A bolus given at an infusion's start, per kg (the guideline's "bolus up to 0.35 mg/kg"; the ceiling is the
 * protocol's, in fhir-profiles rate-titration `bolus`). None is proposed: a clinician asks for one when approving.
 */

/** The bolus a protocol allows: per kg (UCUM, e.g. mg/kg), up to `high` (and from `low`, when it says). */
export interface BolusLimit {
  unit: string;
  high: number;
  low?: number;
}

/** Why a clinician cannot order this bolus (a sentence for a 422), or undefined when the protocol allows it. */
export function bolusRefusal(
  limit: BolusLimit | undefined,
  asked: { value: number; unit: string },
): string | undefined {
  if (!limit) return "This infusion's protocol orders no bolus: approve it without one";
  const allowed = `${limit.low !== undefined ? `${limit.low}-` : 'up to '}${limit.high} ${limit.unit}`;
  if (asked.unit !== limit.unit) return `The bolus is ordered in ${limit.unit} (this infusion's protocol: ${allowed})`;
  if (!Number.isFinite(asked.value) || asked.value > limit.high || (limit.low !== undefined && asked.value < limit.low))
    return `The bolus must be ${allowed}, its limit in this infusion's protocol; ${asked.value} ${asked.unit} is outside it`;
  return undefined;
}

/** The bolus's dose for this weight, rounded as the rate is (to 0.1 of the weight-free unit, e.g. mg). */
export function bolusDose(perKg: number, weightKg: number): number {
  return Math.round(perKg * weightKg * 10) / 10;
}

/**
 * The order's second dosage: the bolus, once, at the start of the infusion (the same `sequence`: given with it, not
 * after it), by the infusion's route, as an EHR reads a dose: `calculated` in the weight-free unit (mg) and
 * `ordered` per kg, the words saying both.
 */
export function bolusDosage(input: { limit: BolusLimit; perKg: number; weightKg: number; infusion?: Dosage }): Dosage {
  const { limit, perKg, weightKg, infusion } = input;
  const doseUnit = limit.unit.replace('/kg', '');
  const dose = bolusDose(perKg, weightKg);
  const bounds = infusion?.timing?.repeat?.boundsPeriod;
  return {
    sequence: infusion?.sequence ?? 1,
    text: `Ketamine IV bolus ${perKg} ${limit.unit} (${dose} ${doseUnit} for ${weightKg} kg) at the start of the infusion`,
    timing: { repeat: { count: 1, ...(bounds ? { boundsPeriod: bounds } : {}) } },
    ...(infusion?.route ? { route: infusion.route } : {}),
    doseAndRate: [
      { type: doseRateType('calculated'), doseQuantity: ucum(dose, doseUnit) },
      { type: doseRateType('ordered'), doseQuantity: ucum(perKg, limit.unit) },
    ],
  };
}

/** The bolus per kg an order gives (an `ordered` dose in that unit), if it gives one. */
export function orderedBolusPerKg(request: MedicationRequest | undefined, unit: string): number | undefined {
  return orderedValue(request, 'doseQuantity', unit);
}

function ucum(value: number, code: string): Quantity {
  return { value, unit: code, system: UCUM, code };
}
