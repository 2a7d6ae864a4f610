import type { Dosage, MedicationRequest, Quantity } from '@medplum/fhirtypes';
import { uuidFromKey, type BolusLimit } from '@kc/protocols';
import type { Card } from './cds-types';
import type { CardOptions } from './cards';
import { summary } from './cards';
import type { UncheckedCondition } from './eligibility';

/**
 * Pure bolus check of order-sign: a draft ketamine order's one-off dose (a dosage with a dose and no rate: a bolus)
 * against the highest bolus per kg the protocols allow (fhir-profiles rate-titration `bolus`, the guideline's
 * 0.35 mg/kg). An infusion's own dose (a dosage with a rate) is the rate check's. No Nest, no HTTP, no FHIR client.
 */

export type BolusFinding =
  | { kind: 'above'; perKg: number; dose?: string; weight?: { kg: number; when?: string }; limit: BolusLimit }
  | { kind: 'unchecked'; why: string }
  | { kind: 'within' };

/** The one-off doses of an order: dosages with a dose and no rate. */
function bolusDosages(order: MedicationRequest): Dosage[] {
  return (order.dosageInstruction ?? []).filter(
    (d) => d.doseAndRate?.some((r) => r.doseQuantity) && !d.doseAndRate.some((r) => r.rateQuantity || r.rateRatio),
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
  weight: { kg: number; when?: string } | undefined,
): BolusFinding {
  if (!limit) return { kind: 'within' };
  const doseUnit = limit.unit.replace('/kg', '');
  for (const dosage of bolusDosages(order)) {
    const perKgDose = doseOf(dosage, limit.unit);
    const dose = doseOf(dosage, doseUnit);
    let perKg: number;
    let slack = 1e-9;
    if (perKgDose) perKg = perKgDose.value!;
    else if (dose && weight && weight.kg > 0) {
      perKg = dose.value! / weight.kg;
      slack += 0.05 / weight.kg;
    } else if (dose)
      return {
        kind: 'unchecked',
        why: `The ketamine bolus per kg (${dose.value} ${doseUnit}; no body weight in kg on record)`,
      };
    else continue;
    if (perKg > limit.high + slack)
      return {
        kind: 'above',
        perKg: Math.round(perKg * 100) / 100,
        dose: dose ? `${dose.value} ${doseUnit}` : undefined,
        weight: dose && !perKgDose ? weight : undefined,
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
    const given =
      dose && weight
        ? `${dose} for ${weight.kg} kg${weight.when ? ` (weighed ${weight.when.slice(0, 10)})` : ''}, `
        : '';
    return [
      {
        uuid: uuidFromKey(`cds:order-sign:${order.id ?? 'draft'}:bolus-per-kg`),
        summary: summary(`Ketamine bolus above the protocols' ceiling: ${perKg} ${limit.unit}`),
        detail: [
          `**${given}${perKg} ${limit.unit}** is above ${limit.high} ${limit.unit}, the largest bolus the clinic's ketamine infusion protocols allow.`,
          'Sign it only if this bolus is intended.',
        ].join('\n\n'),
        indicator: 'warning',
        source: { label: options.sourceLabel },
      } satisfies Card,
    ];
  });
}
