import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ActivityDefinition, Bundle, MedicationRequest } from '@medplum/fhirtypes';
import { bodyWeight } from '../../../test/fixtures/patient-data';
import {
  dosageAtRate,
  latestWeightKg,
  dosageToOrder,
  orderedRatePerKg,
  rateRefusal,
  rateTitrationOf,
  rateToPropose,
} from './rate-titration';

const definition = (name: string) =>
  JSON.parse(
    fs.readFileSync(path.join(__dirname, '..', '..', '..', 'fhir-profiles', `ActivityDefinition-${name}.json`), 'utf8'),
  ) as ActivityDefinition;
const lowDose = definition('ketamine-low-dose-infusion');
const highDose = definition('ketamine-high-dose-infusion');

const weighed = (kg?: number): { bodyWeight: Bundle } => ({
  bodyWeight: {
    resourceType: 'Bundle',
    type: 'searchset',
    entry:
      kg === undefined
        ? []
        : [
            {
              resource: {
                resourceType: 'Observation',
                id: `weight-${kg}`,
                status: 'final',
                effectiveDateTime: '2027-02-01T08:00:00Z',
                code: { text: 'Body weight' },
                valueQuantity: { value: kg, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
              },
            },
          ],
  },
});

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
    expect(rateTitrationOf(lowDose)).toEqual({ unit: 'mg/kg/h', start: 0.5, low: 0.5, high: 2, weightInput });
    expect(rateTitrationOf(highDose)).toEqual({ unit: 'mg/kg/h', start: 1, low: 0.5, high: 2, weightInput });
    expect(rateTitrationOf(definition('post-infusion-check'))).toBeUndefined();
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
