import type { Medication, MedicationAdministration, MedicationRequest } from '@medplum/fhirtypes';
import { administeredRate, rateGiven, type LastGiven } from './rate-given';

/** The rate per kg the next session is proposed at, and the administration it names when it is the pump's. */
const ratePerKgGiven = (last: LastGiven | undefined, unit: string) => rateGiven(last, unit)?.ratePerKg;
const rateGivenReference = (last: LastGiven | undefined, unit: string) => rateGiven(last, unit)?.reference;

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
    expect(administeredRate({ order, administrations }, 'mg/kg/h')?.ratePerKg).toBe(0.6);
  });

  it("the order's rate when nothing usable was recorded", () => {
    const none = (administrations: MedicationAdministration[]) => ratePerKgGiven({ order, administrations }, 'mg/kg/h');
    expect(none([])).toBe(0.75);
    // mL/h needs the bag's concentration; entered in error; not done; no time. (Which administrations are the
    // infusion's, of its drug, is judged before: infusion-as-given.ts.)
    expect(none([given({ value: 50, code: 'mL/h' }, '2027-01-04T09:10:00Z')])).toBe(0.75);
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

  it("given under the EHR's order with no rate per kg: per hour over the weight the order approved here was for", () => {
    const ehrOrder: MedicationRequest = { ...order, id: 'ehr', dosageInstruction: [{ text: '44 mg/h' }] };
    const lowered = { ...given({ value: 44, code: 'mg/h' }, '2027-01-04T09:10:00Z'), id: 'ma-4' };
    const last = { order: ehrOrder, approved: order, administrations: [lowered] };
    expect(ratePerKgGiven(last, 'mg/kg/h')).toBe(0.6);
    expect(rateGivenReference(last, 'mg/kg/h')?.display).toBe(
      'Last session given at 44 mg/h (0.6 mg/kg/h); ordered at 0.75 mg/kg/h',
    );
    // Nothing recorded at the pump: the rate approved here, the EHR's order saying none per kg.
    expect(ratePerKgGiven({ order: ehrOrder, approved: order, administrations: [] }, 'mg/kg/h')).toBe(0.75);
  });

  it('per hour under no order that says its weight: for the latest body weight on record, when given', () => {
    const ehrOrder: MedicationRequest = { ...order, id: 'ehr', dosageInstruction: [{ text: '44 mg/h' }] };
    const lowered = { ...given({ value: 44, code: 'mg/h' }, '2027-01-04T09:10:00Z'), id: 'ma-5', request: undefined };
    expect(rateGiven({ order: ehrOrder, administrations: [lowered] }, 'mg/kg/h', 55)?.ratePerKg).toBe(0.8);
    expect(rateGiven({ administrations: [lowered] }, 'mg/kg/h', 55)?.ratePerKg).toBe(0.8);
    // No weight: nothing to go on.
    expect(rateGiven({ administrations: [lowered] }, 'mg/kg/h')).toBeUndefined();
  });

  describe('a pump run in mL/h: converted with the concentration of the bag given (its Medication)', () => {
    const KETAMINE = { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '6130', display: 'ketamine' };
    const orderOfKetamine: MedicationRequest = { ...order, medicationCodeableConcept: { coding: [KETAMINE] } };
    /** 500 mg of ketamine in a 250 mL bag of saline: 2 mg/mL (the saline listed too, with its own strength). */
    const bag = (id: string): Medication => ({
      resourceType: 'Medication',
      id,
      ingredient: [
        {
          itemCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '387390002', display: 'NaCl' }] },
          strength: { numerator: { value: 9, code: 'mg' }, denominator: { value: 1, code: 'mL' } },
        },
        {
          itemCodeableConcept: { coding: [KETAMINE] },
          strength: { numerator: { value: 500, code: 'mg' }, denominator: { value: 250, code: 'mL' } },
        },
      ],
    });
    const inMlPerHour = (extra: Partial<MedicationAdministration>) => ({
      ...given({ value: 22, code: 'mL/h' }, '2027-01-04T09:10:00Z'),
      id: 'ma-ml',
      medicationCodeableConcept: undefined,
      ...extra,
    });

    it('a contained bag: 22 mL/h of 2 mg/mL is 44 mg/h, 0.6 mg/kg/h for the 73.33 kg ordered for', () => {
      const administration = inMlPerHour({ contained: [bag('bag')], medicationReference: { reference: '#bag' } });
      const last = { order: orderOfKetamine, administrations: [administration] };
      expect(ratePerKgGiven(last, 'mg/kg/h')).toBe(0.6);
      expect(rateGivenReference(last, 'mg/kg/h')?.display).toBe(
        'Last session given at 22 mL/h of 2 mg/mL (0.6 mg/kg/h); ordered at 0.75 mg/kg/h',
      );
    });

    it('a bag on the server, read with the administrations (_include:iterate)', () => {
      const administration = inMlPerHour({ medicationReference: { reference: 'Medication/bag-1' } });
      const last = { order: orderOfKetamine, administrations: [administration], medications: [bag('bag-1')] };
      expect(ratePerKgGiven(last, 'mg/kg/h')).toBe(0.6);
      // A strength in g per L converts as well (0.5 g in 0.25 L).
      const inGrams: Medication = {
        resourceType: 'Medication',
        id: 'bag-2',
        ingredient: [
          {
            itemCodeableConcept: { coding: [KETAMINE] },
            strength: { numerator: { value: 0.5, code: 'g' }, denominator: { value: 0.25, code: 'L' } },
          },
        ],
      };
      const other = inMlPerHour({ medicationReference: { reference: 'Medication/bag-2' } });
      expect(
        ratePerKgGiven({ order: orderOfKetamine, administrations: [other], medications: [inGrams] }, 'mg/kg/h'),
      ).toBe(0.6);
    });

    it("the order's rate when the bag's concentration of the ordered drug is not recorded", () => {
      const none = (administration: MedicationAdministration, medications: Medication[] = []) =>
        ratePerKgGiven({ order: orderOfKetamine, administrations: [administration], medications }, 'mg/kg/h');
      // No Medication, one not read, or one whose only ingredient with a strength is another drug (of two).
      expect(none(inMlPerHour({}))).toBe(0.75);
      expect(none(inMlPerHour({ medicationReference: { reference: 'Medication/unknown' } }))).toBe(0.75);
      const salineOnly: Medication = {
        ...bag('bag-3'),
        ingredient: [bag('x').ingredient![0], { itemCodeableConcept: { text: 'other' } }],
      };
      expect(none(inMlPerHour({ medicationReference: { reference: 'Medication/bag-3' } }), [salineOnly])).toBe(0.75);
    });
  });
});
