import type { MedicationAdministration } from '@medplum/fhirtypes';
import { orderKeyFor, stateOf, type OpenOrder } from '@kc/task-states';
import { medicationOrder, planTask } from '../../../test/fixtures/plans';
import { sessionsGivenDuringInfusionInError } from './given-during-infusion-in-error';

const now = new Date('2027-01-10T12:00:00Z');
const performed = { start: '2027-01-10T09:00:00Z', end: '2027-01-10T10:00:00Z' };

function pumpRecord(status: MedicationAdministration['status'], start: string): MedicationAdministration {
  return {
    resourceType: 'MedicationAdministration',
    id: `ma-${status}`,
    status,
    subject: { reference: 'Patient/p1' },
    medicationCodeableConcept: { text: 'Ketamine' },
    request: { reference: 'MedicationRequest/order' },
    effectivePeriod: { start, end: status === 'completed' ? '2027-01-10T09:55:00Z' : undefined },
  };
}

function session(administrations: MedicationAdministration[], orderStatus: 'active' | 'on-hold' | 'completed') {
  const task = planTask('session', 'plan', new Date('2027-01-08T10:00:00Z'));
  const order = { ...medicationOrder('order', orderStatus, 'plan'), identifier: [orderKeyFor('session')] };
  const open: OpenOrder = { order, administrations };
  return { task, open };
}

const given = (sessions: ReturnType<typeof session>[]) =>
  sessionsGivenDuringInfusionInError({ procedureId: 'infusion', performed, sessions, now });

describe('sessions the pump gave during an infusion recorded in error before its follow-up', () => {
  it('are done by the pump’s record, their orders completed: never left active to be given again', () => {
    const [answered] = given([session([pumpRecord('completed', '2027-01-10T09:05:00Z')], 'active')]);
    expect(stateOf(answered.task.written)).toBe('done');
    expect(answered.task.written.output).toEqual([
      {
        type: { text: 'fulfilled-by' },
        valueReference: {
          reference: 'MedicationAdministration/ma-completed',
          display: 'given at the pump on 2027-01-10',
        },
      },
    ]);
    expect(answered.orders.map((o) => o.written.status)).toEqual(['completed']);
    expect(answered.administration.id).toBe('ma-completed');
  });

  it('a held order given all the same is completed too', () => {
    expect(given([session([pumpRecord('completed', '2027-01-10T09:05:00Z')], 'on-hold')])).toHaveLength(1);
  });

  it('a session the pump is still running, given at another time, or already answered, is left alone', () => {
    expect(given([session([pumpRecord('in-progress', '2027-01-10T09:05:00Z')], 'active')])).toEqual([]);
    expect(given([session([pumpRecord('completed', '2027-01-12T09:05:00Z')], 'active')])).toEqual([]);
    expect(given([session([pumpRecord('completed', '2027-01-10T09:05:00Z')], 'completed')])).toEqual([]);
    expect(given([session([], 'active')])).toEqual([]);
  });

  it('nothing when the infusion’s time is unknown', () => {
    expect(
      sessionsGivenDuringInfusionInError({
        procedureId: 'infusion',
        performed: undefined,
        sessions: [session([pumpRecord('completed', '2027-01-10T09:05:00Z')], 'active')],
        now,
      }),
    ).toEqual([]);
  });
});

describe('a session with the EHR’s replacement left open beside its order', () => {
  it('given under either: the session done, both orders completed', () => {
    const base = session([], 'active');
    const replacement = {
      ...medicationOrder('replacement', 'active', 'plan'),
      priorPrescription: { reference: 'MedicationRequest/order' },
    };
    const record = {
      ...pumpRecord('completed', '2027-01-10T09:05:00Z'),
      request: { reference: 'MedicationRequest/replacement' },
    };
    const [answered] = given([
      { ...base, open: { ...base.open, leftOpen: [{ order: replacement, administrations: [record] }] } },
    ]);
    expect(answered.orders.map((o) => [o.read.id, o.written.status])).toEqual([
      ['order', 'completed'],
      ['replacement', 'completed'],
    ]);
  });
});
