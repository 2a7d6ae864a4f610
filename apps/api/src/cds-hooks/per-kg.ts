import type { MedicationRequest, Quantity } from '@medplum/fhirtypes';
import { clinicDay, uuidFromKey } from '@kc/protocols';
import type { Card } from './cds-types';
import { summary, type CardOptions } from './cards';

/**
 * What order-sign's dose checks (the rate, the bolus) share: an amount per kg read as ordered per kg, or as the
 * absolute amount over the latest weight; and the warning card that says it is out of bounds. Pure.
 */

export interface Weight {
  kg: number;
  when?: string;
}

export type PerKgReading =
  /** Per kg, with the slack of an absolute amount rounded to 0.1 (none when ordered per kg). */
  | { kind: 'read'; perKg: number; slack: number; absolute?: Quantity }
  /** In the absolute unit only, with no weight to divide by. */
  | { kind: 'unweighed'; absolute: Quantity }
  | { kind: 'none' };

/** An amount per kg: as ordered per kg when given so, else the absolute amount over the weight. */
export function perKgOf(perKg: Quantity | undefined, absolute: Quantity | undefined, weight?: Weight): PerKgReading {
  if (perKg?.value !== undefined) return { kind: 'read', perKg: perKg.value, slack: 1e-9 };
  if (absolute?.value === undefined) return { kind: 'none' };
  if (!weight || weight.kg <= 0) return { kind: 'unweighed', absolute };
  return { kind: 'read', perKg: absolute.value / weight.kg, slack: 1e-9 + 0.05 / weight.kg, absolute };
}

/** "250 mg/h for 80 kg (weighed 2026-11-10), ": the absolute amount and the weight it was judged at, when it was. */
export function judgedAt(absolute: string | undefined, weight: Weight | undefined, zone?: string): string {
  if (!absolute || !weight) return '';
  const day = clinicDay(weight.when, zone);
  return `${absolute} for ${weight.kg} kg${day ? ` (weighed ${day})` : ''}, `;
}

/** A warning card about one draft order's dose, keyed by the order and what was checked (one per order and check). */
export function doseWarningCard(
  order: MedicationRequest,
  check: string,
  text: { summary: string; detail: string },
  options: CardOptions,
): Card {
  return {
    uuid: uuidFromKey(`cds:order-sign:${order.id ?? 'draft'}:${check}`),
    summary: summary(text.summary),
    detail: text.detail,
    indicator: 'warning',
    source: { label: options.sourceLabel },
  };
}
