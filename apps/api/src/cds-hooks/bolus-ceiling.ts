import type { Dosage, MedicationRequest, Quantity } from '@medplum/fhirtypes';
import type { BolusLimit } from '@kc/protocols';
import type { Card } from './cds-types';
import type { CardOptions } from './cards';
import type { UncheckedCondition } from './eligibility';
import { doseWarningCard, judgedAt, perKgOf, type Weight } from './per-kg';

/**
 * Pure bolus check of order-sign: a draft ketamine order's one-off dose (a dosage with a dose, no rate, no duration)
 * against the highest bolus per kg the protocols allow (fhir-profiles rate-titration `bolus`, the guideline's
 * 0.35 mg/kg). An infusion's own dose (a dosage with a rate) is the rate check's. No Nest, no HTTP, no FHIR client.
 */

export type BolusFinding =
  | { kind: 'above'; perKg: number; dose?: string; weight?: Weight; limit: BolusLimit }
  | { kind: 'unchecked'; why: string }
  | { kind: 'within' };

/**
 * The one-off doses of an order: dosages with a dose, no rate and no duration. A dose given over a duration ("50 mg
 * over 40 minutes") is an infusion, not a bolus: judging it against the bolus ceiling would warn falsely.
 */
function bolusDosages(order: MedicationRequest): Dosage[] {
  return (order.dosageInstruction ?? []).filter(
    (d) =>
      d.doseAndRate?.some((r) => r.doseQuantity) &&
      !d.doseAndRate.some((r) => r.rateQuantity || r.rateRatio) &&
      d.timing?.repeat?.duration === undefined,
  );
}

const doseOf = (dosage: Dosage, code: string): Quantity | undefined =>
  dosage.doseAndRate
    ?.map((r) => r.doseQuantity)
    .find((q): q is Quantity => q?.code === code && typeof q.value === 'number');

/**
 * An order's bolus per kg against the ceiling: as ordered per kg when it says so, else its dose divided by the latest
 * weight (within the rounding of a dose to 0.1). No bolus, or no ceiling to judge by: within.
 */
export function checkOrderBolus(
  order: MedicationRequest,
  limit: BolusLimit | undefined,
  weight: Weight | undefined,
): BolusFinding {
  if (!limit) return { kind: 'within' };
  const doseUnit = limit.unit.replace('/kg', '');
  for (const dosage of bolusDosages(order)) {
    const read = perKgOf(doseOf(dosage, limit.unit), doseOf(dosage, doseUnit), weight);
    if (read.kind === 'none') continue;
    if (read.kind === 'unweighed')
      return {
        kind: 'unchecked',
        why: `The ketamine bolus per kg (${read.absolute.value} ${doseUnit}; no body weight in kg on record)`,
      };
    const { perKg, slack, absolute } = read;
    if (perKg > limit.high + slack)
      return {
        kind: 'above',
        perKg: Math.round(perKg * 100) / 100,
        dose: absolute ? `${absolute.value} ${doseUnit}` : undefined,
        weight: absolute ? weight : undefined,
        limit,
      };
  }
  return { kind: 'within' };
}

/** The unchecked findings as the eligibility's unchecked conditions (one warning card says what could not run). */
export function uncheckedBoluses(findings: BolusFinding[]): UncheckedCondition[] {
  return findings.flatMap((f) => (f.kind === 'unchecked' ? [{ code: 'bolus-per-kg', description: f.why }] : []));
}

/** A warning card per order whose bolus per kg is above the ceiling: the dose, the weight it was judged at, the ceiling. */
export function bolusAboveCards(
  findings: { order: MedicationRequest; finding: BolusFinding }[],
  options: CardOptions,
): Card[] {
  return findings.flatMap(({ order, finding }) => {
    if (finding.kind !== 'above') return [];
    const { perKg, limit, dose, weight } = finding;
    return [
      doseWarningCard(
        order,
        'bolus-per-kg',
        {
          summary: `Ketamine bolus above the protocols' ceiling: ${perKg} ${limit.unit}`,
          detail: [
            `**${judgedAt(dose, weight, options.zone)}${perKg} ${limit.unit}** is above ${limit.high} ${limit.unit}, the largest bolus the clinic's ketamine infusion protocols allow.`,
            'Sign it only if this bolus is intended.',
          ].join('\n\n'),
        },
        options,
      ),
    ];
  });
}
