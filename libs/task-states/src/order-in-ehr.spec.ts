import type { MedicationAdministration, MedicationRequest, ServiceRequest, Task } from '@medplum/fhirtypes';
import { medicationOrder, PUMP_RUNNING } from '../../../test/fixtures/plans';
import {
  closedInEhrWords,
  closedUngiven,
  orderInEhr,
  ordersBySession,
  sessionIdsOfOrder,
  sessionOpenOrder,
  sessionsAlongChain,
} from './order-in-ehr';
import { orderKeyFor } from './request-authorisation';

const at = (minute: number) => `2027-01-10T10:${String(minute).padStart(2, '0')}:00Z`;
/** An order updated at `minute`, replacing `prior` when given. */
const order = (id: string, status: MedicationRequest['status'], minute: number, prior?: string): MedicationRequest => ({
  ...medicationOrder(id, status),
  meta: { versionId: '2', lastUpdated: at(minute) },
  ...(prior ? { priorPrescription: { reference: `MedicationRequest/${prior}` } } : {}),
});
/** A session (an approved Task) based on these (its plan, the orders it was approved on). */
const session = (id: string, basedOn: string[]): Task => ({
  resourceType: 'Task',
  id,
  status: 'ready',
  intent: 'order',
  basedOn: basedOn.map((reference) => ({ reference })),
});
const given = (orderId: string, status: MedicationAdministration['status']): MedicationAdministration => ({
  ...PUMP_RUNNING,
  status,
  request: { reference: `MedicationRequest/${orderId}` },
});

describe('an approved session’s order as the EHR has it', () => {
  it('the open order written here, whatever else the patient has', () => {
    const ours = order('ours', 'active', 1);
    const found = orderInEhr([order('old', 'cancelled', 2), ours], [order('other', 'active', 3)]);
    expect(found.current).toBe(ours);
    expect(found.replacedInEhr).toBeUndefined();
  });

  it('follows the EHR’s replacements at any depth, by priorPrescription or basedOn, not other orders', () => {
    const ours = order('ours', 'cancelled', 1);
    const first = order('ehr-1', 'cancelled', 2, 'ours');
    const second: MedicationRequest = {
      ...order('ehr-2', 'active', 3),
      basedOn: [{ reference: 'MedicationRequest/ehr-1' }],
    };
    const unrelated = order('antiemetic', 'active', 4);
    // Listed newest first, as a search may answer: the chain is found whatever the order.
    const found = orderInEhr([ours], [unrelated, second, first]);
    expect(found.current).toBe(second);
    expect(found.replacedInEhr).toBe(true);
    expect(found.chain.map((o) => o.id).sort()).toEqual(['ehr-1', 'ehr-2', 'ours']);
    expect(closedUngiven(found)).toBeUndefined();
  });

  it('nothing open: the last closed of the chain, which returns the session unless it was given or begun', () => {
    const ours = order('ours', 'cancelled', 1);
    const replacement = order('ehr-1', 'stopped', 5, 'ours');
    const found = orderInEhr([ours], [replacement]);
    expect(found.current).toBeUndefined();
    expect(found.last).toBe(replacement);
    expect(closedUngiven(found)).toBe(replacement);
    // The pump began the session under the replacement: it is the infusion's, not a clinician's to decide again.
    expect(closedUngiven(found, [given('ehr-1', 'in-progress')])).toBeUndefined();
    // An administration of another order does not count; one not begun (not-done) neither.
    expect(closedUngiven(found, [given('other', 'completed'), given('ours', 'not-done')])).toBe(replacement);
    // Given under an order of the chain (completed): nothing to return.
    expect(closedUngiven(orderInEhr([ours], [order('ehr-1', 'completed', 5, 'ours')]))).toBeUndefined();
    // Held or a draft is not closed.
    expect(closedUngiven(orderInEhr([order('ours', 'draft', 1)]))).toBeUndefined();
    expect(closedUngiven(orderInEhr([]))).toBeUndefined();
  });

  it('says how the order ended, with the EHR’s reason', () => {
    expect(closedInEhrWords({ ...order('o', 'cancelled', 1), statusReason: { text: 'Patient unwell' } })).toBe(
      'was cancelled in the EHR (Patient unwell)',
    );
    expect(
      closedInEhrWords({
        ...order('o', 'entered-in-error', 1),
        statusReason: { coding: [{ code: 'x', display: 'Wrong patient' }] },
      }),
    ).toBe('was entered in error in the EHR (Wrong patient)');
    expect(closedInEhrWords(order('o', 'stopped', 1))).toBe('was stopped in the EHR');
  });

  it('orders by session: written here by their key, the EHR’s by each session approved on them', () => {
    const ours = { ...order('ours', 'active', 1), identifier: [orderKeyFor('t1')] };
    const ehr = order('ehr', 'active', 2);
    const grouped = ordersBySession(
      [ours, ehr, order('other', 'active', 3)],
      [
        { id: 't1' },
        { id: 't2', approvedOn: ['MedicationRequest/ehr'] },
        { id: 't3', approvedOn: ['MedicationRequest/ehr'] },
      ],
    );
    expect([...grouped].map(([id, orders]) => [id, orders.map((o) => o.id)])).toEqual([
      ['t1', ['ours']],
      ['t2', ['ehr']],
      ['t3', ['ehr']],
    ]);
  });

  it('an order is the session’s whose approval wrote it, or those approved on it; a Task merely based on a plan is not', () => {
    const ehr = order('ehr', 'cancelled', 1);
    const tasks = [
      session('t2', ['CarePlan/p', 'MedicationRequest/ehr']),
      session('t3', ['CarePlan/p']),
      session('t4', ['MedicationRequest/ehr-other']),
    ];
    expect(sessionIdsOfOrder(ehr, tasks)).toEqual(['t2']);
    expect(sessionIdsOfOrder({ ...order('ours', 'cancelled', 1), identifier: [orderKeyFor('t1')] }, tasks)).toEqual([
      't1',
    ]);
    expect(sessionIdsOfOrder(ehr, [])).toEqual([]);
  });
});

describe('the session an EHR order stands for along its replacements (sessionsAlongChain)', () => {
  const keyed = (id: string, taskId: string, prior?: string) => ({
    ...order(id, 'cancelled', 1, prior),
    identifier: [orderKeyFor(taskId)],
  });

  it('the nearest order with a session wins, its key before an approval on it', () => {
    const ours = keyed('ours', 't1');
    const approvedOn = order('ehr-1', 'cancelled', 2, 'ours');
    const latest = order('ehr-2', 'active', 3, 'ehr-1');
    // A session approved on the nearer order (t2) is what the latest stands for, not the key further back (t1).
    const found = sessionsAlongChain(latest, [ours, approvedOn], [session('t2', ['MedicationRequest/ehr-1'])]);
    expect(found?.ids).toEqual(['t2']);
    expect(found?.through.id).toBe('ehr-1');
    expect(found?.replacement).toBe(true);
    expect(sessionsAlongChain(latest, [ours, approvedOn], [])?.ids).toEqual(['t1']);
    expect(sessionsAlongChain(ours, [], [session('t3', ['MedicationRequest/ours'])])).toEqual({
      ids: ['t1', 't3'],
      through: ours,
      replacement: false,
    });
  });

  it('with replacedOnly the order’s own sessions are skipped; a chain through an order not read ends there', () => {
    const approved = { ...order('ehr', 'active', 2, 'gone'), id: 'ehr' };
    expect(sessionsAlongChain(approved, [], [session('t2', ['MedicationRequest/ehr'])])?.ids).toEqual(['t2']);
    expect(
      sessionsAlongChain(approved, [], [session('t2', ['MedicationRequest/ehr'])], { replacedOnly: true }),
    ).toBeUndefined();
    // The order it replaces was deleted in the EHR: the key further back is not reached.
    const further = keyed('older', 't1');
    expect(sessionsAlongChain(approved, [further], [])).toBeUndefined();
  });
});

describe('a session’s orders still to be given (sessionOpenOrder)', () => {
  const records = [given('ours', 'in-progress'), given('second', 'completed'), given('other', 'completed')];

  it('the open order written here first, with its records, and every other open order of its chain beside it', () => {
    const ours = order('ours', 'active', 1);
    const first = order('first', 'cancelled', 2, 'ours');
    const second = order('second', 'active', 3, 'first');
    const unrelated = order('unrelated', 'active', 4, 'other');
    const found = sessionOpenOrder([ours], [ours, first, second, unrelated], records)!;
    expect(found.order).toBe(ours);
    expect(found.administrations.map((a) => a.status)).toEqual(['in-progress']);
    // Through the cancelled first replacement: before session 39 the open orders alone were searched, missing it.
    expect(found.leftOpen?.map((o) => [o.order.id, o.administrations.length])).toEqual([['second', 1]]);
  });

  it('the EHR’s sibling of a dose changed here (the replacement of the session’s earlier order) is beside it', () => {
    const earlier = order('earlier', 'cancelled', 1);
    const changedHere = order('changed', 'active', 3, 'earlier');
    const sibling = order('sibling', 'active', 2, 'earlier');
    const found = sessionOpenOrder([earlier, changedHere], [sibling], [])!;
    expect([found.order.id, found.leftOpen?.map((o) => o.order.id)]).toEqual(['changed', ['sibling']]);
  });

  it('none written here open: the EHR’s latest open replacement, the others beside it; nothing when none is open', () => {
    const ours = order('ours', 'cancelled', 1);
    const older = order('older', 'on-hold', 2, 'ours');
    const latest = order('latest', 'active', 3, 'ours');
    const found = sessionOpenOrder([ours], [older, latest], [])!;
    expect([found.order.id, found.leftOpen?.map((o) => o.order.id)]).toEqual(['latest', ['older']]);
    expect(sessionOpenOrder([ours], [order('given', 'completed', 2, 'ours')], [])).toBeUndefined();
    expect(sessionOpenOrder([], [latest], [])).toBeUndefined();
  });

  it('an order other than medication has no chain: the open one written', () => {
    const referral: ServiceRequest = {
      resourceType: 'ServiceRequest',
      id: 'sr',
      status: 'active',
      intent: 'order',
      subject: { reference: 'Patient/p' },
    };
    const found = sessionOpenOrder([referral], [order('x', 'active', 1, 'sr')], [])!;
    expect([found.order.id, found.leftOpen]).toEqual(['sr', undefined]);
  });
});
