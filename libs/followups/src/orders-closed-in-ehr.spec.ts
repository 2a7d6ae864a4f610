import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { heldTask, ORDER_CLOSED_IN_EHR, stateOf, transition } from '@kc/task-states';
import { medicationOrder, planTask, PUMP_RUNNING, reminderAbout as reminder } from '../../../test/fixtures/plans';
import { sessionsToReturnForReview } from './orders-closed-in-ehr';

const now = new Date('2027-01-10T12:00:00Z');
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000).toISOString();

/** An approved infusion session (its proposal a MedicationRequest). */
const session = (id: string, focus = `MedicationRequest/proposal-${id}`): Task => ({
  ...planTask(id, 'cp1', now),
  for: { reference: 'Patient/p1' },
  focus: { reference: focus },
});
const order = (id: string, status: MedicationRequest['status'], closedMinutesAgo = 10): MedicationRequest => ({
  ...medicationOrder(id, status),
  meta: { versionId: '2', lastUpdated: minutesAgo(closedMinutesAgo) },
  statusReason: status === 'cancelled' ? { text: 'Patient unwell' } : undefined,
});

const judge = (
  tasks: Task[],
  written: [string, MedicationRequest[]][],
  extra: Partial<Parameters<typeof sessionsToReturnForReview>[0]> = {},
) =>
  sessionsToReturnForReview({
    tasks,
    written: new Map(written),
    patientOrders: [],
    administrations: [],
    reminders: [],
    now,
    ...extra,
  });

describe('approved sessions whose order the EHR closed', () => {
  it('go back to a clinician (draft, why, coded), their reminders not sent revoked', () => {
    const ready = session('ready');
    const [r] = judge([ready], [['ready', [order('o1', 'cancelled')]]], {
      reminders: [
        reminder('fast', 'Task/ready'),
        reminder('sent', 'Task/ready', 'completed'),
        reminder('x', 'Task/other'),
      ],
    });
    expect(r.returned.status).toBe('draft');
    expect(stateOf(r.returned)).toBe('awaiting-approval');
    expect(r.returned.statusReason).toEqual({
      coding: [ORDER_CLOSED_IN_EHR],
      text: 'Its order was cancelled in the EHR (Patient unwell): approve it again to order the session, or reject it',
    });
    expect(r.closedOrder.id).toBe('o1');
    expect(r.reminders.map((m) => [m.read.id, m.revoked.status, m.revoked.statusReason?.text])).toEqual([
      ['fast', 'revoked', 'Not to be given now: its order was cancelled in the EHR (Patient unwell)'],
    ]);
  });

  it('held for a contraindication, or overdue, too (overdue stays overdue); approving again clears why', () => {
    const held = heldTask(session('held'), order('o-held', 'on-hold'));
    const overdue = { ...session('late'), restriction: { period: { start: minutesAgo(3000), end: minutesAgo(60) } } };
    const late = transition(overdue, { event: 'mark-overdue', now });
    const returns = judge(
      [held, late],
      [
        ['held', [order('o-held', 'entered-in-error')]],
        ['late', [order('o-late', 'stopped')]],
      ],
    );
    expect(returns.map((r) => [r.task.id, r.returned.status, stateOf(r.returned)])).toEqual([
      ['held', 'draft', 'awaiting-approval'],
      ['late', 'draft', 'overdue'],
    ]);
    const again = transition(returns[0].returned, { event: 'approve', now });
    expect(again.status).toBe('ready');
    expect(again.statusReason).toBeUndefined();
  });

  it('not while an order is open, replaced in the EHR, given, begun, or closed within the grace', () => {
    const t = session('t');
    // Its dose changed here: the old order cancelled, the new one active.
    expect(judge([t], [['t', [order('old', 'cancelled'), order('new', 'active')]]])).toEqual([]);
    // Replaced in the EHR.
    const replacement = { ...order('ehr', 'active'), priorPrescription: { reference: 'MedicationRequest/o1' } };
    expect(judge([t], [['t', [order('o1', 'cancelled')]]], { patientOrders: [replacement] })).toEqual([]);
    // The pump began it.
    const pump = { ...PUMP_RUNNING, status: 'completed' as const, request: { reference: 'MedicationRequest/o1' } };
    expect(judge([t], [['t', [order('o1', 'stopped')]]], { administrations: [pump] })).toEqual([]);
    // Closed 1 minute ago, the grace 2: the EHR may be writing its replacement.
    const closedBefore = new Date(now.getTime() - 120_000);
    expect(judge([t], [['t', [order('o1', 'cancelled', 1)]]], { closedBefore })).toEqual([]);
    expect(judge([t], [['t', [order('o1', 'cancelled', 5)]]], { closedBefore })).toHaveLength(1);
    // No order found at all (nothing to judge by), or not approved.
    expect(judge([t], [])).toEqual([]);
    expect(judge([planTask('draft', 'cp1')], [['draft', [order('o1', 'cancelled')]]])).toEqual([]);
  });

  it('only infusion sessions: a check’s ServiceRequest is not judged here', () => {
    const check = session('check', 'ServiceRequest/proposal-check');
    expect(judge([check], [['check', [order('o1', 'cancelled')]]])).toEqual([]);
  });
});
