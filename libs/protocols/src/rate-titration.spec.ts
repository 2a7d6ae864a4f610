import type { Bundle, MedicationRequest } from '@medplum/fhirtypes';
import { bodyWeight } from '../../../test/fixtures/patient-data';
import { catalogActivity, weighed } from '../../../test/fixtures/protocol-data';
import { bolusRefusal, orderedBolusPerKg } from './bolus';
import {
  dosageAtRate,
  latestWeightKg,
  dosageToOrder,
  orderedRatePerKg,
  rateRefusal,
  rateTitrationOf,
  rateToPropose,
  weightNotice,
} from './rate-titration';

const lowDose = catalogActivity('ketamine-low-dose-infusion');
const highDose = catalogActivity('ketamine-high-dose-infusion');

const proposalAt = (ratePerKg: number): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  status: 'draft',
  intent: 'proposal',
  subject: { reference: 'Patient/p1' },
  instantiatesCanonical: [`${lowDose.url}|${lowDose.version}`],
  dosageInstruction: [
    {
      timing: { repeat: { boundsPeriod: { start: '2027-01-04T09:00:00Z', end: '2027-01-06T17:00:00Z' } } },
      doseAndRate: [
        {
          type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/dose-rate-type', code: 'ordered' }] },
          rateQuantity: { value: ratePerKg, unit: 'mg/kg/h', code: 'mg/kg/h' },
        },
      ],
    },
  ],
});

describe('infusion rate titrated per kg (fhir-profiles rate-titration)', () => {
  it('reads the start and the range from each infusion ActivityDefinition', () => {
    const weightInput = 'bodyWeight';
    // The guideline's bolus: up to 0.35 mg/kg.
    const bolus = { unit: 'mg/kg', high: 0.35 };
    // A weight taken within 30 days, else advice to weigh the patient.
    const weightWithinDays = 30;
    expect(rateTitrationOf(lowDose)).toEqual({
      unit: 'mg/kg/h',
      start: 0.5,
      low: 0.5,
      high: 2,
      weightInput,
      bolus,
      weightWithinDays,
    });
    expect(rateTitrationOf(highDose)).toEqual({
      unit: 'mg/kg/h',
      start: 1,
      low: 0.5,
      high: 2,
      weightInput,
      bolus,
      weightWithinDays,
    });
    expect(rateTitrationOf(catalogActivity('post-infusion-check'))).toBeUndefined();
  });

  it('advises weighing the patient when the weight is older than the protocol wants, not before', () => {
    const t = rateTitrationOf(lowDose)!;
    const now = new Date('2026-12-04T12:00:00Z');
    expect(weightNotice(t, '2026-11-10T09:00:00Z', now)).toBeUndefined();
    expect(weightNotice(t, '2026-11-01T09:00:00Z', now)).toBe(
      'Weighed 2026-11-01, more than 30 days ago: weigh the patient before the session (the rate in mg/h is computed from the latest weight)',
    );
    expect(weightNotice(t, undefined, now)).toBeUndefined();
    // The day as the clinic reads it: 02:00 UTC on 1 November is the evening of 31 October in New York.
    expect(weightNotice(t, '2026-11-01T02:00:00Z', now, 'America/New_York')).toMatch(/^Weighed 2026-10-31, /);
    // A protocol that says nothing of it asks for nothing.
    expect(weightNotice({ ...t, weightWithinDays: undefined }, '2020-01-01T00:00:00Z', now)).toBeUndefined();
  });

  it('proposes at the rate last ordered when it is within the range, else at the start', () => {
    const t = rateTitrationOf(lowDose)!;
    expect(rateToPropose(t)).toBe(0.5);
    expect(rateToPropose(t, 1.25)).toBe(1.25);
    expect(rateToPropose(t, 3)).toBe(0.5);
  });

  it('refuses a rate outside the range or in another unit, naming the range', () => {
    const t = rateTitrationOf(lowDose)!;
    expect(rateRefusal(t, { value: 2, unit: 'mg/kg/h' })).toBeUndefined();
    expect(rateRefusal(t, { value: 0.5, unit: 'mg/kg/h' })).toBeUndefined();
    expect(rateRefusal(t, { value: 0.4, unit: 'mg/kg/h' })).toMatch(/within 0\.5-2 mg\/kg\/h/);
    expect(rateRefusal(t, { value: 1, unit: 'mg/kg/min' })).toMatch(/ordered in mg\/kg\/h/);
  });

  it('the dosage at a rate: per kg as ordered, mg/h for the weight, the ceiling, the words; the timing kept', () => {
    const current = proposalAt(0.5).dosageInstruction;
    const { dosageInstruction, unresolved } = dosageAtRate(lowDose, 0.75, weighed(73.3), current);
    expect(unresolved).toEqual([]);
    const [dosage] = dosageInstruction;
    expect(
      dosage.doseAndRate?.map((d) => [d.type?.coding?.[0].code, d.rateQuantity?.value, d.rateQuantity?.code]),
    ).toEqual([
      ['calculated', 55, 'mg/h'],
      ['ordered', 0.75, 'mg/kg/h'],
    ]);
    expect(dosage.maxDosePerAdministration?.value).toBe(97.7);
    expect(dosage.text).toBe(
      'Ketamine IV infusion at 0.75 mg/kg/h (55 mg/h for 73.3 kg) over 40 minutes, titrated to response within the guideline range 0.5-2 mg/kg/h. Vital signs (BP, HR, SpO2) monitored throughout.',
    );
    expect(dosage.timing).toEqual(current![0].timing);
    // The ActivityDefinition itself is not changed.
    expect(lowDose.dosage?.[0].doseAndRate?.[0].rateQuantity?.value).toBeUndefined();
    expect(orderedRatePerKg({ ...proposalAt(0.5), dosageInstruction }, 'mg/kg/h')).toBe(0.75);
  });

  it('what an approval orders: the rate asked for, else the proposal’s, at the weight on record now', () => {
    const proposal = proposalAt(1);
    const ordered = (d?: { dosage?: { doseAndRate?: { rateQuantity?: { value?: number } }[] }[] }) =>
      d?.dosage?.[0].doseAndRate?.map((r) => r.rateQuantity?.value);
    const asProposed = dosageToOrder({ proposal, activity: lowDose, variables: weighed(90) });
    expect(ordered(asProposed)).toEqual([90, 1]);
    expect(asProposed.weighed).toEqual({
      reference: 'Observation/weight-90',
      display: 'Body weight 90 kg (2027-02-01)',
    });
    expect(
      ordered(
        dosageToOrder({ proposal, activity: lowDose, variables: weighed(90), asked: { value: 0.6, unit: 'mg/kg/h' } }),
      ),
    ).toEqual([54, 0.6]);
    // No weight now: as proposed without a rate asked; refused with one.
    expect(dosageToOrder({ proposal, activity: lowDose, variables: weighed() })).toEqual({});
    expect(
      dosageToOrder({ proposal, activity: lowDose, variables: weighed(), asked: { value: 1, unit: 'mg/kg/h' } })
        .refusal,
    ).toMatch(/record a body weight in kg/);
    // Not titrated (a service or a communication, or no ActivityDefinition known): nothing to change, no rate taken.
    expect(dosageToOrder({ proposal: { resourceType: 'ServiceRequest' }, activity: lowDose })).toEqual({});
    expect(dosageToOrder({ proposal, activity: undefined, asked: { value: 1, unit: 'mg/kg/h' } }).refusal).toMatch(
      /nothing given at a rate per kg/,
    );
    expect(
      dosageToOrder({ proposal, activity: lowDose, asked: { value: 9, unit: 'mg/kg/h' }, variables: weighed(80) })
        .refusal,
    ).toMatch(/outside it/);
  });

  it('a bolus asked for: a second dosage at the same weight, once at the infusion’s start, per kg and in mg', () => {
    const proposal = proposalAt(1);
    const order = dosageToOrder({
      proposal,
      activity: lowDose,
      variables: weighed(72),
      asked: { value: 0.75, unit: 'mg/kg/h' },
      bolus: { value: 0.2, unit: 'mg/kg' },
    });
    expect(order.refusal).toBeUndefined();
    const [infusion, bolus] = order.dosage!;
    expect(infusion.doseAndRate?.map((r) => r.rateQuantity?.value)).toEqual([54, 0.75]);
    expect(bolus).toMatchObject({
      sequence: infusion.sequence,
      text: 'Ketamine IV bolus 0.2 mg/kg (14.4 mg for 72 kg) at the start of the infusion',
      timing: { repeat: { count: 1, boundsPeriod: { start: '2027-01-04T09:00:00Z', end: '2027-01-06T17:00:00Z' } } },
      route: infusion.route,
      doseAndRate: [
        { type: { coding: [{ code: 'calculated' }] }, doseQuantity: { value: 14.4, code: 'mg' } },
        { type: { coding: [{ code: 'ordered' }] }, doseQuantity: { value: 0.2, code: 'mg/kg' } },
      ],
    });
    expect(orderedBolusPerKg({ ...proposal, dosageInstruction: order.dosage }, 'mg/kg')).toBe(0.2);
    expect(orderedBolusPerKg(proposal, 'mg/kg')).toBeUndefined();
    // The rate as proposed, with a bolus.
    const proposedRate = dosageToOrder({
      proposal,
      activity: lowDose,
      variables: weighed(72),
      bolus: { value: 0.35, unit: 'mg/kg' },
    });
    expect(
      proposedRate.dosage?.map((d) => d.doseAndRate?.[0].rateQuantity?.value ?? d.doseAndRate?.[0].doseQuantity?.value),
    ).toEqual([72, 25.2]);
  });

  it('a bolus refused: above the ceiling, in another unit, with no weight on record, or where no bolus is allowed', () => {
    const proposal = proposalAt(1);
    const bolus = (value: number, unit = 'mg/kg') => ({ value, unit });
    const refusal = (b: { value: number; unit: string }, activity = lowDose) =>
      dosageToOrder({ proposal, activity, variables: weighed(70), bolus: b }).refusal;
    expect(refusal(bolus(0.4))).toBe(
      "The bolus must be up to 0.35 mg/kg, its limit in this infusion's protocol; 0.4 mg/kg is outside it",
    );
    expect(refusal(bolus(20, 'mg'))).toMatch(/^The bolus is ordered in mg\/kg/);
    expect(dosageToOrder({ proposal, activity: lowDose, variables: weighed(), bolus: bolus(0.2) }).refusal).toMatch(
      /bolus per kg cannot be turned into a dose.*record a body weight/,
    );
    const noBolus = {
      ...lowDose,
      extension: lowDose.extension!.map((e) => ({ ...e, extension: e.extension?.filter((x) => x.url !== 'bolus') })),
    };
    expect(refusal(bolus(0.2), noBolus)).toMatch(/orders no bolus/);
    expect(dosageToOrder({ proposal, activity: undefined, bolus: bolus(0.2) }).refusal).toMatch(/without a bolus/);
    expect(bolusRefusal({ unit: 'mg/kg', low: 0.1, high: 0.35 }, bolus(0.05))).toMatch(/must be 0.1-0.35 mg\/kg/);
  });

  it('the latest weight in kg of the weight searchset', () => {
    const found: Bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: [{ resource: bodyWeight(72.5, '2026-11-20T09:00:00Z') }, { resource: bodyWeight(80) }],
    };
    expect(latestWeightKg(found)).toEqual({ kg: 72.5, when: '2026-11-20T09:00:00Z' });
    expect(latestWeightKg(undefined)).toBeUndefined();
  });
});
