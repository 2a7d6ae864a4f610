import type { MedicationAdministration, MedicationRequest } from '@medplum/fhirtypes';
import { orderedRatePerKg, type LastGiven } from '@kc/protocols';
import { orderKeyFor, transition } from '@kc/task-states';
import { infusionDosage, ucum } from '../../../test/fixtures/orders';
import { catalogActivity, weighed } from '../../../test/fixtures/protocol-data';
import { medicationOrder, planTask, PUMP_RUNNING } from '../../../test/fixtures/plans';
import { rateNotedOn, rateNoticeSinceApproval, reproposedAtRateGiven } from './late-administrations';

const lowDose = catalogActivity('ketamine-low-dose-infusion');
const now = new Date('2027-01-05T00:00:00Z');
const weighedOn = (kg: number) => weighed(kg, '2027-01-01T08:00:00Z');
/** The session infused at 1 mg/kg/h for 80 kg, under order `o1`. */
const order: MedicationRequest = { ...medicationOrder('o1', 'completed'), dosageInstruction: infusionDosage(1, 80) };
const pumped = (id: string, mgPerHour: number, status: MedicationAdministration['status'] = 'completed') => ({
  ...PUMP_RUNNING,
  id,
  status,
  request: { reference: 'MedicationRequest/o1' },
  dosage: { rateQuantity: ucum(mgPerHour, 'mg/h') },
});
/** The next session, awaiting approval, proposed at 1 mg/kg/h (the order's: nothing was recorded at the pump then). */
const proposal: MedicationRequest = {
  resourceType: 'MedicationRequest',
  id: 'next',
  meta: { versionId: '1' },
  status: 'draft',
  intent: 'proposal',
  subject: { reference: 'Patient/p1' },
  dosageInstruction: infusionDosage(1, 80),
};
const task = planTask('t-next', 'cp1');
const judge = (given: LastGiven | undefined, p = proposal, t = task) =>
  reproposedAtRateGiven({ task: t, proposal: p, activity: lowDose, given, variables: weighedOn(80) });

describe('a session proposed again at the rate its infusion was given, recorded after the follow-ups', () => {
  it('lowered at the pump: the rate given, computed for today’s weight, naming the administration', () => {
    const r = judge({ order, administrations: [pumped('ma1', 60)] })!;
    expect(orderedRatePerKg(r.reproposed, 'mg/kg/h')).toBe(0.75);
    expect(r.reproposed.supportingInformation).toEqual([
      {
        reference: 'MedicationAdministration/ma1',
        display: 'Last session given at 60 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h',
      },
    ]);
    expect(r.reason).toBe(
      'Proposed at the rate the last session was given, recorded since: Last session given at 60 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h; proposed at 1 mg/kg/h before',
    );
    // Judged again with nothing new: nothing to write.
    expect(judge({ order, administrations: [pumped('ma1', 60)] }, r.reproposed)).toBeUndefined();
  });

  it('taken back (entered in error): the order’s rate again, naming no administration', () => {
    const before = judge({ order, administrations: [pumped('ma1', 60)] })!.reproposed;
    const r = judge({ order, administrations: [] }, before)!;
    expect(orderedRatePerKg(r.reproposed, 'mg/kg/h')).toBe(1);
    expect(r.reproposed.supportingInformation).toBeUndefined();
  });

  it('at the order’s rate, the administration only named; nothing when nothing was recorded or it was decided', () => {
    expect(judge({ order, administrations: [pumped('ma1', 80)] })?.reproposed.supportingInformation).toEqual([
      { reference: 'MedicationAdministration/ma1', display: 'Last session given at 80 mg/h (1 mg/kg/h)' },
    ]);
    expect(judge({ order, administrations: [] })).toBeUndefined();
    expect(judge(undefined)).toBeUndefined();
    expect(
      judge({ order, administrations: [pumped('ma1', 60)] }, proposal, transition(task, { event: 'approve', now })),
    ).toBeUndefined();
    expect(judge({ order, administrations: [pumped('ma1', 60)] }, { ...proposal, status: 'active' })).toBeUndefined();
    // A rate outside the protocol's range (0.5-2 mg/kg/h) is not proposed: its start instead, naming nothing.
    const r = judge({ order, administrations: [pumped('ma1', 20)] })!;
    expect(orderedRatePerKg(r.reproposed, 'mg/kg/h')).toBe(0.5);
    expect(r.reproposed.supportingInformation).toBeUndefined();
  });
});

describe('an approved session’s order told of the rate its infusion was given, recorded after the approval', () => {
  /** The next session's order, approved at 1 mg/kg/h (written here: its key). */
  const approvedOrder: MedicationRequest = {
    ...medicationOrder('next-order', 'active'),
    identifier: [orderKeyFor('t-next')],
    dosageInstruction: infusionDosage(1, 80),
  };
  const notice = (given: LastGiven | undefined, o = approvedOrder) =>
    rateNoticeSinceApproval({ order: o, activity: lowDose, given, variables: weighedOn(80), now });

  it('lowered at the pump: the order is not changed but noted, with the rate proposed now, once', () => {
    const n = notice({ order, administrations: [pumped('ma1', 60)] })!;
    expect(orderedRatePerKg(n.noted, 'mg/kg/h')).toBe(1);
    expect(n.reason).toBe(
      'Recorded at the pump after this session was approved: Last session given at 60 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h. Its protocol proposes 0.75 mg/kg/h from it; this order gives 1 mg/kg/h: change the dose if needed',
    );
    expect(rateNotedOn(n.noted)).toEqual({ value: 0.75, unit: 'mg/kg/h', text: n.reason });
    // Judged again with nothing new: nothing to write.
    expect(notice({ order, administrations: [pumped('ma1', 60)] }, n.noted)).toBeUndefined();
  });

  it('nothing when the protocol proposes what the order gives, nothing recorded at the pump, or not an open order written here', () => {
    expect(notice({ order, administrations: [pumped('ma1', 80)] })).toBeUndefined();
    expect(notice({ order, administrations: [] })).toBeUndefined();
    const given = { order, administrations: [pumped('ma1', 60)] };
    expect(notice(given, { ...approvedOrder, status: 'cancelled' })).toBeUndefined();
    expect(notice(given, { ...approvedOrder, identifier: undefined })).toBeUndefined();
  });
});
