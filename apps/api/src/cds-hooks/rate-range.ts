import type { MedicationRequest, PlanDefinition } from '@medplum/fhirtypes';
import { flattenActions, rateTitrationOf, type ProtocolCatalog, type RateTitration } from '@kc/protocols';
import type { Card } from './cds-types';
import type { CardOptions } from './cards';
import type { UncheckedCondition } from './eligibility';
import { doseWarningCard, judgedAt, perKgOf, type Weight } from './per-kg';

/**
 * Pure dose-range check of order-sign: a draft ketamine order's rate per kg against the range the protocols'
 * infusions may be ordered in (fhir-profiles rate-titration). No Nest, no HTTP, no FHIR client.
 */

/** The rate-titrations of a protocol's infusions, each with the ActivityDefinition canonical it belongs to. */
export function planTitrations(
  plan: PlanDefinition,
  catalog: Pick<ProtocolCatalog, 'activityDefinition'>,
): { canonical: string; titration: RateTitration }[] {
  return flattenActions(plan.action ?? []).flatMap((action) => {
    const titration = rateTitrationOf(catalog.activityDefinition(action.definitionCanonical));
    return titration && action.definitionCanonical ? [{ canonical: action.definitionCanonical, titration }] : [];
  });
}

/**
 * The range an order is checked against: its own ActivityDefinition's when it instantiates one, else the widest of
 * the protocols' (an order that names none may be for any of them). Undefined: no titrated infusion to compare with.
 */
export function rangeForOrder(
  order: MedicationRequest,
  titrations: { canonical: string; titration: RateTitration }[],
): RateTitration | undefined {
  const named = new Set((order.instantiatesCanonical ?? []).map((c) => c.split('|')[0]));
  const own = titrations.filter((t) => named.has(t.canonical.split('|')[0])).map((t) => t.titration);
  const candidates = own.length ? own : titrations.map((t) => t.titration);
  const [first, ...rest] = candidates;
  if (!first) return undefined;
  const sameUnit = rest.filter((t) => t.unit === first.unit);
  const boluses = candidates.flatMap((t) => t.bolus ?? []);
  const bolusUnit = boluses[0]?.unit;
  const sameBolusUnit = boluses.filter((b) => b.unit === bolusUnit);
  return {
    ...first,
    low: Math.min(first.low, ...sameUnit.map((t) => t.low)),
    high: Math.max(first.high, ...sameUnit.map((t) => t.high)),
    // The highest bolus any of them allows (a low bound is not checked here: a small bolus is not a danger).
    bolus: bolusUnit ? { unit: bolusUnit, high: Math.max(...sameBolusUnit.map((b) => b.high)) } : undefined,
  };
}

export type RateFinding =
  | { kind: 'outside'; perKg: number; rate?: string; weight?: Weight; range: RateTitration }
  | { kind: 'unchecked'; why: string }
  | { kind: 'within' };

const rateOf = (order: MedicationRequest, code: string) =>
  order.dosageInstruction
    ?.flatMap((d) => d.doseAndRate ?? [])
    .map((d) => d.rateQuantity)
    .find((q) => q?.code === code && typeof q.value === 'number');

/**
 * An order's rate per kg against the range: as ordered per kg when it says so, else its rate per hour divided by the
 * latest weight (within the rounding of a rate to 0.1 per hour). No rate at all: nothing to check (within).
 */
export function checkOrderRate(
  order: MedicationRequest,
  range: RateTitration,
  weight: Weight | undefined,
): RateFinding {
  const perHourUnit = range.unit.replace('/kg', '');
  const read = perKgOf(rateOf(order, range.unit), rateOf(order, perHourUnit), weight);
  if (read.kind === 'none') return { kind: 'within' };
  if (read.kind === 'unweighed')
    return {
      kind: 'unchecked',
      why: `The ketamine rate per kg (${read.absolute.value} ${perHourUnit}; no body weight in kg on record)`,
    };
  const { perKg, slack, absolute } = read;
  if (perKg >= range.low - slack && perKg <= range.high + slack) return { kind: 'within' };
  return {
    kind: 'outside',
    perKg: Math.round(perKg * 100) / 100,
    rate: absolute ? `${absolute.value} ${perHourUnit}` : undefined,
    weight: absolute ? weight : undefined,
    range,
  };
}

/** The unchecked findings as the eligibility's unchecked conditions (one warning card says what could not run). */
export function uncheckedRates(findings: RateFinding[]): UncheckedCondition[] {
  return findings.flatMap((f) => (f.kind === 'unchecked' ? [{ code: 'rate-per-kg', description: f.why }] : []));
}

/** A warning card per order whose rate per kg is outside the range: the rate, the weight it was judged at, the range. */
export function rateOutsideCards(
  findings: { order: MedicationRequest; finding: RateFinding }[],
  options: CardOptions,
): Card[] {
  return findings.flatMap(({ order, finding }) => {
    if (finding.kind !== 'outside') return [];
    const { perKg, range, rate, weight } = finding;
    const side = perKg > range.high ? 'above' : 'below';
    return [
      doseWarningCard(
        order,
        'rate-per-kg',
        {
          summary: `Ketamine rate ${side} the protocols' range: ${perKg} ${range.unit}`,
          detail: [
            `**${judgedAt(rate, weight, options.zone)}${perKg} ${range.unit}** is ${side} ${range.low}-${range.high} ${range.unit}, the rate per kg the clinic's ketamine infusion protocols may be ordered at.`,
            'Sign it only if this rate is intended.',
          ].join('\n\n'),
        },
        options,
      ),
    ];
  });
}
