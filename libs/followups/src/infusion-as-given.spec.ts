import type { Medication, MedicationAdministration, MedicationRequest } from '@medplum/fhirtypes';
import { infusionAsGiven, type AdministrationRecords } from './infusion-as-given';

const KETAMINE = { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '6130', display: 'ketamine' };
const ONDANSETRON = { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '26225', display: 'ondansetron' };

/** The infusion: 09:00 to 10:00, Procedure/proc-1. */
const infusion = { procedureId: 'proc-1', performed: { start: '2027-01-04T09:00:00Z', end: '2027-01-04T10:00:00Z' } };

const order = (id: string, drug = KETAMINE): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  id,
  status: 'active',
  intent: 'order',
  subject: { reference: 'Patient/p1' },
  medicationCodeableConcept: { coding: [drug] },
});

const administered = (id: string, start: string, extra: Partial<MedicationAdministration> = {}) =>
  ({
    resourceType: 'MedicationAdministration',
    id,
    status: 'completed',
    medicationCodeableConcept: { coding: [KETAMINE] },
    subject: { reference: 'Patient/p1' },
    effectivePeriod: { start },
    ...extra,
  }) as MedicationAdministration;

const records = (
  administrations: MedicationAdministration[],
  orders: MedicationRequest[] = [],
  medications: Medication[] = [],
): AdministrationRecords => ({ administrations, orders, medications });

const given = (r: AdministrationRecords, approved?: MedicationRequest) =>
  infusionAsGiven({ ...infusion, drug: [KETAMINE], records: r, approved });

const ids = (last: ReturnType<typeof given>) => last?.administrations?.map((a) => a.id);

describe("an infusion as given: its administrations of the protocol's drug and the order it was given under", () => {
  const approved = order('approved');

  it('nothing on record: undefined; only the order approved here: that order', () => {
    expect(given(records([]))).toBeUndefined();
    expect(given(records([]), approved)).toEqual({ order: approved, administrations: [], medications: [] });
  });

  it("the order the latest administration names, the EHR's replacing the one approved here (kept for its weight)", () => {
    const ehr = order('ehr-order');
    const last = given(
      records(
        [
          administered('ma-1', '2027-01-04T09:00:00Z', { request: { reference: 'MedicationRequest/approved' } }),
          administered('ma-2', '2027-01-04T09:20:00Z', { request: { reference: 'MedicationRequest/ehr-order' } }),
        ],
        [ehr],
      ),
      approved,
    );
    expect(last?.order).toBe(ehr);
    expect(last?.approved).toBe(approved);
    expect(ids(last)).toEqual(['ma-1', 'ma-2']);
  });

  it('recorded with no order: read by time, the order approved here giving the weight', () => {
    const last = given(records([administered('ma-1', '2027-01-04T09:10:00Z')]), approved);
    expect(last?.order).toBe(approved);
    expect(ids(last)).toEqual(['ma-1']);
    // Without any order on record, the administrations alone (a rate per kg needs none).
    expect(ids(given(records([administered('ma-1', '2027-01-04T09:10:00Z')])))).toEqual(['ma-1']);
  });

  it('only this infusion: part of it, or of no Procedure and within its time (an hour either side)', () => {
    const last = given(
      records([
        administered('hung-early', '2027-01-04T08:15:00Z'),
        administered('day-before', '2027-01-03T09:10:00Z'),
        administered('other-procedure', '2027-01-04T09:10:00Z', { partOf: [{ reference: 'Procedure/proc-0' }] }),
        administered('this-procedure', '2027-01-04T13:00:00Z', { partOf: [{ reference: 'Procedure/proc-1' }] }),
        administered('in-error', '2027-01-04T09:30:00Z', { status: 'entered-in-error' }),
      ]),
      approved,
    );
    expect(ids(last)).toEqual(['hung-early', 'this-procedure']);
  });

  it("only the protocol's drug: by the administration's code, its bag's, or else its order's", () => {
    const antiemeticOrder = order('antiemetic', ONDANSETRON);
    const bag: Medication = {
      resourceType: 'Medication',
      id: 'bag',
      code: { text: 'Ketamine 500 mg in 250 mL' },
      ingredient: [{ itemCodeableConcept: { coding: [KETAMINE] } }],
    };
    const last = given(
      records(
        [
          administered('antiemetic-coded', '2027-01-04T09:30:00Z', {
            medicationCodeableConcept: { coding: [ONDANSETRON] },
          }),
          administered('antiemetic-by-order', '2027-01-04T09:31:00Z', {
            medicationCodeableConcept: { text: 'see order' },
            request: { reference: 'MedicationRequest/antiemetic' },
          }),
          administered('by-bag', '2027-01-04T09:05:00Z', {
            medicationCodeableConcept: undefined,
            medicationReference: { reference: 'Medication/bag' },
          }),
          administered('by-order', '2027-01-04T09:10:00Z', {
            medicationCodeableConcept: { text: 'Ketamine' },
            request: { reference: 'MedicationRequest/approved' },
          }),
          // Named in text only, with no order: not known to be the infusion's drug.
          administered('text-only', '2027-01-04T09:20:00Z', { medicationCodeableConcept: { text: 'Ketamine' } }),
        ],
        [antiemeticOrder],
        [bag],
      ),
      approved,
    );
    expect(ids(last)).toEqual(['by-bag', 'by-order']);
    // The antiemetic's order is not the one the infusion was given under.
    expect(last?.order).toBe(approved);
  });
});
