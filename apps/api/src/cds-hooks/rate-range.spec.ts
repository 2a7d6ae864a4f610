import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ActivityDefinition, MedicationRequest, PlanDefinition } from '@medplum/fhirtypes';
import { bolusAboveCards, checkOrderBolus, uncheckedBoluses } from './bolus-ceiling';
import { checkOrderRate, planTitrations, rangeForOrder, rateOutsideCards, uncheckedRates } from './rate-range';

const profile = <T>(file: string) =>
  JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', '..', 'fhir-profiles', file), 'utf8')) as T;
const definitions = [
  profile<ActivityDefinition>('ActivityDefinition-ketamine-low-dose-infusion.json'),
  profile<ActivityDefinition>('ActivityDefinition-ketamine-high-dose-infusion.json'),
];
const catalog = {
  activityDefinition: (canonical?: string) => definitions.find((d) => d.url === canonical?.split('|')[0]),
};
const lowDosePlan = profile<PlanDefinition>('PlanDefinition-ketamine-low-dose-series.json');

const order = (
  rates: { value: number; code: string }[],
  extra: Partial<MedicationRequest> = {},
): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  id: 'draft-1',
  status: 'draft',
  intent: 'order',
  subject: { reference: 'Patient/p1' },
  dosageInstruction: [{ doseAndRate: rates.map((r) => ({ rateQuantity: { ...r, unit: r.code } })) }],
  ...extra,
});

describe("order-sign's rate check against the protocols' rate per kg (pure)", () => {
  const titrations = planTitrations(lowDosePlan, catalog);
  const range = rangeForOrder(order([]), titrations)!;
  const weighed = { kg: 80, when: '2026-11-10T09:00:00Z' };

  it("reads the protocol's titrated infusions, and the range an order is checked against", () => {
    expect(titrations.map((t) => t.titration.low + '-' + t.titration.high)).toContain('0.5-2');
    expect(range).toMatchObject({ unit: 'mg/kg/h', low: 0.5, high: 2, weightInput: 'bodyWeight' });
  });

  it('an order per kg is judged as it is; an order per hour at the latest weight, within its rounding', () => {
    expect(checkOrderRate(order([{ value: 2.5, code: 'mg/kg/h' }]), range, undefined)).toMatchObject({
      kind: 'outside',
      perKg: 2.5,
    });
    expect(checkOrderRate(order([{ value: 250, code: 'mg/h' }]), range, weighed)).toMatchObject({
      kind: 'outside',
      perKg: 3.13,
      rate: '250 mg/h',
      weight: weighed,
    });
    expect(checkOrderRate(order([{ value: 30, code: 'mg/h' }]), range, weighed)).toMatchObject({
      kind: 'outside',
      perKg: 0.38,
    });
    expect(checkOrderRate(order([{ value: 160, code: 'mg/h' }]), range, weighed)).toEqual({ kind: 'within' });
    // 2 mg/kg/h for 73.33 kg is 146.66 mg/h, ordered (as the service rounds it) as 146.7: the same rate; 146.8 is not.
    expect(checkOrderRate(order([{ value: 146.7, code: 'mg/h' }]), range, { kg: 73.33 })).toEqual({ kind: 'within' });
    expect(checkOrderRate(order([{ value: 146.8, code: 'mg/h' }]), range, { kg: 73.33 }).kind).toBe('outside');
    expect(checkOrderRate(order([]), range, weighed)).toEqual({ kind: 'within' });
    const unchecked = checkOrderRate(order([{ value: 100, code: 'mg/h' }]), range, undefined);
    expect(uncheckedRates([unchecked])).toEqual([
      { code: 'rate-per-kg', description: 'The ketamine rate per kg (100 mg/h; no body weight in kg on record)' },
    ]);
  });

  it('a warning card in words: the rate, the weight it was judged at, the range', () => {
    const draft = order([{ value: 250, code: 'mg/h' }]);
    const [card] = rateOutsideCards([{ order: draft, finding: checkOrderRate(draft, range, weighed) }], {
      sourceLabel: 'Ketamine care plans',
    });
    expect(card).toMatchObject({
      indicator: 'warning',
      summary: "Ketamine rate above the protocols' range: 3.13 mg/kg/h",
    });
    expect(card.detail).toContain('**250 mg/h for 80 kg (weighed 2026-11-10), 3.13 mg/kg/h** is above 0.5-2 mg/kg/h');
  });

  it('a bolus (a dose with no rate) above the ceiling: per kg as it is, in mg at the latest weight; an infusion dose is not a bolus', () => {
    expect(range.bolus).toEqual({ unit: 'mg/kg', high: 0.35 });
    const withDose = (dose: { value: number; code: string }, rate?: { value: number; code: string }) =>
      order([], {
        dosageInstruction: [
          {
            doseAndRate: [
              { doseQuantity: { ...dose, unit: dose.code } },
              ...(rate ? [{ rateQuantity: { ...rate, unit: rate.code } }] : []),
            ],
          },
        ],
      });
    expect(checkOrderBolus(withDose({ value: 0.5, code: 'mg/kg' }), range.bolus, undefined)).toMatchObject({
      kind: 'above',
      perKg: 0.5,
    });
    expect(checkOrderBolus(withDose({ value: 40, code: 'mg' }), range.bolus, weighed)).toMatchObject({
      kind: 'above',
      perKg: 0.5,
      dose: '40 mg',
      weight: weighed,
    });
    // 0.35 mg/kg for 80 kg is 28 mg: within; and 28 mg/h of an infusion with its own dose is the rate check's.
    expect(checkOrderBolus(withDose({ value: 28, code: 'mg' }), range.bolus, weighed)).toEqual({ kind: 'within' });
    expect(
      checkOrderBolus(withDose({ value: 80, code: 'mg' }, { value: 40, code: 'mg/h' }), range.bolus, weighed),
    ).toEqual({ kind: 'within' });
    // A dose over a duration is an infusion: no bolus to judge.
    const overTime = withDose({ value: 50, code: 'mg' });
    overTime.dosageInstruction![0].timing = { repeat: { duration: 40, durationUnit: 'min' } };
    expect(checkOrderBolus(overTime, range.bolus, weighed)).toEqual({ kind: 'within' });
    const unchecked = checkOrderBolus(withDose({ value: 20, code: 'mg' }), range.bolus, undefined);
    expect(uncheckedBoluses([unchecked])).toEqual([
      { code: 'bolus-per-kg', description: 'The ketamine bolus per kg (20 mg; no body weight in kg on record)' },
    ]);
    const draft = withDose({ value: 40, code: 'mg' });
    const [card] = bolusAboveCards([{ order: draft, finding: checkOrderBolus(draft, range.bolus, weighed) }], {
      sourceLabel: 'Ketamine care plans',
    });
    expect(card).toMatchObject({
      indicator: 'warning',
      summary: "Ketamine bolus above the protocols' ceiling: 0.5 mg/kg",
    });
    expect(card.detail).toContain('**40 mg for 80 kg (weighed 2026-11-10), 0.5 mg/kg** is above 0.35 mg/kg');
  });
});
