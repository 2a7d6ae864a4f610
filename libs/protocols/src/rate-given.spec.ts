import type { MedicationAdministration, MedicationRequest } from '@medplum/fhirtypes';
import { administeredRatePerKg, rateGivenReference, ratePerKgGiven } from './rate-given';

const DOSE_RATE_TYPE = 'http://terminology.hl7.org/CodeSystem/dose-rate-type';

/** An order at 0.75 mg/kg/h for 73.33 kg: 55 mg/h (rounded to 0.1, as the service orders it). */
const order: MedicationRequest = {
  resourceType: 'MedicationRequest',
  id: 'order-1',
  status: 'active',
  intent: 'order',
  subject: { reference: 'Patient/p1' },
  dosageInstruction: [
    {
      doseAndRate: [
        {
          type: { coding: [{ system: DOSE_RATE_TYPE, code: 'calculated' }] },
          rateQuantity: { value: 55, code: 'mg/h' },
        },
        {
          type: { coding: [{ system: DOSE_RATE_TYPE, code: 'ordered' }] },
          rateQuantity: { value: 0.75, code: 'mg/kg/h' },
        },
      ],
    },
  ],
};

const given = (
  rate: { value: number; code: string },
  start: string,
  extra: Partial<MedicationAdministration> = {},
): MedicationAdministration => ({
  resourceType: 'MedicationAdministration',
  status: 'completed',
  medicationCodeableConcept: { text: 'Ketamine' },
  subject: { reference: 'Patient/p1' },
  request: { reference: 'MedicationRequest/order-1' },
  effectivePeriod: { start },
  dosage: { rateQuantity: { ...rate, unit: rate.code } },
  ...extra,
});

describe('the rate an infusion was given at (MedicationAdministration), which the next session starts at', () => {
  it('the latest administration by start: per kg as recorded', () => {
    const administrations = [
      given({ value: 1, code: 'mg/kg/h' }, '2027-01-04T09:20:00Z'),
      given({ value: 0.75, code: 'mg/kg/h' }, '2027-01-04T09:00:00Z'),
    ];
    expect(ratePerKgGiven({ order, administrations }, 'mg/kg/h')).toBe(1);
  });

  it('per hour: divided by the weight the order was computed for, to 0.01', () => {
    // 44 mg/h for 73.33 kg (55 / 0.75): 0.6 mg/kg/h, lowered at the pump.
    const administrations = [given({ value: 44, code: 'mg/h' }, '2027-01-04T09:10:00Z')];
    expect(administeredRatePerKg({ order, administrations }, 'mg/kg/h')).toBe(0.6);
  });

  it("the order's rate when nothing usable was recorded", () => {
    const none = (administrations: MedicationAdministration[]) => ratePerKgGiven({ order, administrations }, 'mg/kg/h');
    expect(none([])).toBe(0.75);
    // mL/h needs the bag's concentration; another order's; entered in error; not done; no time.
    expect(none([given({ value: 50, code: 'mL/h' }, '2027-01-04T09:10:00Z')])).toBe(0.75);
    expect(
      none([
        given({ value: 1, code: 'mg/kg/h' }, '2027-01-04T09:10:00Z', {
          request: { reference: 'MedicationRequest/other' },
        }),
      ]),
    ).toBe(0.75);
    expect(none([given({ value: 1, code: 'mg/kg/h' }, '2027-01-04T09:10:00Z', { status: 'entered-in-error' })])).toBe(
      0.75,
    );
    expect(none([given({ value: 1, code: 'mg/kg/h' }, '2027-01-04T09:10:00Z', { status: 'not-done' })])).toBe(0.75);
    expect(none([given({ value: 1, code: 'mg/kg/h' }, '', { effectivePeriod: undefined })])).toBe(0.75);
    expect(ratePerKgGiven(undefined, 'mg/kg/h')).toBeUndefined();
  });

  it('an administration at a single time (effectiveDateTime) counts as well', () => {
    const administrations = [
      given({ value: 0.9, code: 'mg/kg/h' }, '2027-01-04T09:00:00Z'),
      given({ value: 1.1, code: 'mg/kg/h' }, '', {
        effectivePeriod: undefined,
        effectiveDateTime: '2027-01-04T09:30:00Z',
      }),
    ];
    expect(ratePerKgGiven({ order, administrations }, 'mg/kg/h')).toBe(1.1);
  });

  it('names the administration the rate came from, in words, for the proposal and the clinician', () => {
    const lowered = { ...given({ value: 44, code: 'mg/h' }, '2027-01-04T09:10:00Z'), id: 'ma-2' };
    expect(rateGivenReference({ order, administrations: [lowered] }, 'mg/kg/h')).toEqual({
      reference: 'MedicationAdministration/ma-2',
      display: 'Last session given at 44 mg/h (0.6 mg/kg/h); ordered at 0.75 mg/kg/h',
    });
    const perKg = { ...given({ value: 1, code: 'mg/kg/h' }, '2027-01-04T09:10:00Z'), id: 'ma-3' };
    expect(rateGivenReference({ order, administrations: [perKg] }, 'mg/kg/h')?.display).toBe(
      'Last session given at 1 mg/kg/h; ordered at 0.75 mg/kg/h',
    );
    // The order's own rate, or nothing recorded: no administration to name.
    expect(rateGivenReference({ order, administrations: [] }, 'mg/kg/h')).toBeUndefined();
    expect(rateGivenReference(undefined, 'mg/kg/h')).toBeUndefined();
  });
});
