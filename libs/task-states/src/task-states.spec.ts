import type { Task } from '@medplum/fhirtypes';
import {
  approvedOutside,
  awaitingApproval,
  canTransition,
  InvalidTransition,
  isApproved,
  isAwaitingApproval,
  isReturnedUnapproved,
  OPEN_STATUSES,
  stateOf,
  transition,
  type TaskEvent,
  type TaskState,
} from './task-states';

const now = new Date('2027-01-10T00:00:00Z');
const generated = (): Task => ({
  resourceType: 'Task',
  ...awaitingApproval(),
  restriction: { period: { start: '2027-01-05T00:00:00Z', end: '2027-01-12T00:00:00Z' } },
});
const after = (task: Task, ...events: TaskEvent[]) =>
  events.reduce(
    (t, event) =>
      transition(t, {
        event,
        now: event === 'mark-overdue' ? new Date('2027-02-01T00:00:00Z') : now,
        reason: 'why',
        window: { start: '2027-01-06T00:00:00Z', end: '2027-01-08T00:00:00Z' },
        output: { reference: 'Procedure/p1' },
      }),
    task,
  );

describe('task state machine', () => {
  it('a generated Task is awaiting approval and not actionable for an EHR (draft, intent plan)', () => {
    const task = generated();
    expect(task).toMatchObject({ status: 'draft', intent: 'plan' });
    expect(stateOf(task)).toBe('awaiting-approval');
    expect(isAwaitingApproval(task)).toBe(true);
    expect(isApproved(task)).toBe(false);
  });

  it.each<[TaskEvent[], TaskState, Task['status']]>([
    [['approve'], 'approved', 'ready'],
    [['reject'], 'rejected', 'rejected'],
    [['reschedule'], 'rescheduled', 'ready'],
    [['approve', 'reschedule'], 'rescheduled', 'ready'],
    [['approve', 'complete'], 'done', 'completed'],
    [['complete'], 'done', 'completed'],
    [['supersede'], 'superseded', 'cancelled'],
    [['withdraw'], 'withdrawn', 'cancelled'],
    [['mark-overdue', 'withdraw'], 'withdrawn', 'cancelled'],
    [['approve', 'withdraw'], 'withdrawn', 'cancelled'],
    [['approve', 'mark-overdue', 'withdraw'], 'withdrawn', 'cancelled'],
    [['mark-overdue'], 'overdue', 'draft'],
    [['approve', 'mark-overdue'], 'overdue', 'ready'],
    [['mark-overdue', 'approve'], 'approved', 'ready'],
    [['mark-overdue', 'reschedule'], 'rescheduled', 'ready'],
    [['assign'], 'awaiting-approval', 'draft'],
    [['approve', 'assign'], 'approved', 'ready'],
    [['approve', 'mark-overdue', 'assign'], 'overdue', 'ready'],
    [['approve', 'change-dose'], 'approved', 'ready'],
    [['reschedule', 'change-dose'], 'rescheduled', 'ready'],
    [['approve', 'mark-overdue', 'change-dose'], 'overdue', 'ready'],
    [['approve', 'return-for-review'], 'awaiting-approval', 'draft'],
    [['reschedule', 'return-for-review'], 'awaiting-approval', 'draft'],
    [['approve', 'mark-overdue', 'return-for-review'], 'overdue', 'draft'],
    [['approve', 'return-for-review', 'approve'], 'approved', 'ready'],
    [['approve', 'complete', 'record-in-error'], 'recorded-in-error', 'entered-in-error'],
    [['supersede', 'record-in-error'], 'recorded-in-error', 'entered-in-error'],
  ])('%j -> %s (status %s)', (events, state, status) => {
    const task = after(generated(), ...events);
    expect(stateOf(task)).toBe(state);
    expect(task.status).toBe(status);
    expect(task.intent).toBe('plan');
  });

  it.each<[TaskEvent[], TaskEvent]>([
    [['complete'], 'approve'],
    [['supersede'], 'reject'],
    [['reject'], 'approve'],
    [['approve'], 'approve'],
    [['complete'], 'reschedule'],
    [['supersede'], 'complete'],
    [['mark-overdue'], 'mark-overdue'],
    [['complete'], 'withdraw'],
    [['withdraw'], 'approve'],
    [['complete'], 'assign'],
    [['reject'], 'assign'],
    [[], 'change-dose'],
    [['approve', 'complete'], 'change-dose'],
    [['approve', 'complete'], 'return-for-review'],
    [['approve', 'reject'], 'return-for-review'],
    // Only what an infusion closed: an open Task is withdrawn instead, a rejection was a clinician's.
    [[], 'record-in-error'],
    [['approve'], 'record-in-error'],
    [['reject'], 'record-in-error'],
    [['withdraw'], 'record-in-error'],
    [['complete', 'record-in-error'], 'approve'],
  ])('after %j, %s is refused', (events, event) => {
    const task = after(generated(), ...events);
    expect(canTransition(task, event)).toBe(false);
    expect(() => after(task, event)).toThrow(InvalidTransition);
  });

  it('returned for review only when approved, saying why; approved again, the reason is gone', () => {
    expect(() => after(generated(), 'return-for-review')).toThrow(InvalidTransition);
    expect(() => after(generated(), 'mark-overdue', 'return-for-review')).toThrow(InvalidTransition);
    const returned = after(generated(), 'approve', 'return-for-review');
    expect(returned.statusReason?.text).toBe('why');
    expect(returned.statusReason?.coding?.[0].code).toBe('order-closed-in-ehr');
    expect(after(returned, 'approve').statusReason).toBeUndefined();
  });

  it('set to be done outside while it awaited approval: returned for approval, saying why; approved here, the reason is gone', () => {
    const setReady: Task = { ...generated(), status: 'ready' };
    expect(approvedOutside(setReady)).toBe(true);
    expect(isAwaitingApproval(setReady)).toBe(true);
    expect(approvedOutside({ ...generated(), status: 'in-progress' })).toBe(true);
    expect(approvedOutside(generated())).toBe(false);
    expect(approvedOutside(after(generated(), 'approve'))).toBe(false);
    const returned = after(setReady, 'return-unapproved');
    expect([returned.status, stateOf(returned), returned.statusReason?.coding?.[0].code]).toEqual([
      'draft',
      'awaiting-approval',
      'approved-outside',
    ]);
    expect(isReturnedUnapproved(returned)).toBe(true);
    expect(() => after(generated(), 'return-unapproved')).toThrow(InvalidTransition);
    expect(() => after(generated(), 'approve', 'return-unapproved')).toThrow(InvalidTransition);
    expect(after(returned, 'approve').statusReason).toBeUndefined();
  });

  it('approved and carried on in the EHR (accepted, in progress): approved still, and can be returned for review', () => {
    for (const status of ['accepted', 'in-progress'] as const) {
      const carried: Task = { ...after(generated(), 'approve'), status };
      expect([isApproved(carried), isAwaitingApproval(carried), approvedOutside(carried)]).toEqual([
        true,
        false,
        false,
      ]);
      expect(after(carried, 'return-for-review').status).toBe('draft');
    }
    // Not one the EHR set to be done while it awaited approval here.
    expect(isApproved({ ...generated(), status: 'in-progress' })).toBe(false);
    expect(OPEN_STATUSES).toEqual(['draft', 'requested', 'received', 'accepted', 'ready', 'in-progress', 'on-hold']);
  });

  it('withdrawn, approved or not, says why', () => {
    expect(after(generated(), 'withdraw').statusReason?.text).toBe('why');
    expect(after(generated(), 'approve', 'withdraw').statusReason?.text).toBe('why');
  });

  it('superseded is consistent: cancelled with a reason and the infusion that superseded it', () => {
    const task = after(generated(), 'supersede');
    expect(task.statusReason?.text).toBe('why');
    expect(task.output?.[0].valueReference?.reference).toBe('Procedure/p1');
  });

  it('done records what fulfilled it', () => {
    const task = after(generated(), 'complete');
    expect(task.output).toEqual([{ type: { text: 'fulfilled-by' }, valueReference: { reference: 'Procedure/p1' } }]);
  });

  it('reschedule moves the window; mark-overdue needs an ended window', () => {
    expect(after(generated(), 'reschedule').restriction?.period?.end).toBe('2027-01-08T00:00:00Z');
    expect(() => transition(generated(), { event: 'mark-overdue', now })).toThrow(/not overdue/);
  });

  it('assign names who is to do an open Task, or nobody, and changes nothing else', () => {
    const approved = after(generated(), 'approve');
    const owner = { reference: 'Practitioner/nurse', display: 'Nurse Joy' };
    const taken = transition(approved, { event: 'assign', now, owner });
    expect(taken.owner).toEqual(owner);
    expect({ ...taken, owner: undefined, lastModified: undefined }).toEqual({ ...approved, lastModified: undefined });
    const released = transition(taken, { event: 'assign', now });
    expect('owner' in released).toBe(false);
    expect(released.status).toBe('ready');
  });

  it('change-dose needs an approved Task, overdue or not (an overdue one awaiting approval is approved instead)', () => {
    expect(() => after(generated(), 'mark-overdue', 'change-dose')).toThrow(/not approved yet/);
    expect(after(generated(), 'approve', 'mark-overdue', 'change-dose').status).toBe('ready');
  });

  it('change-dose leaves an approved Task held for a contraindication alone (override it first)', () => {
    const held: Task = { ...after(generated(), 'approve'), status: 'on-hold' };
    expect(() => after(held, 'change-dose')).toThrow(/on hold for a contraindication/);
  });

  it('a Task without this service businessStatus is not ours to move', () => {
    expect(() =>
      transition({ resourceType: 'Task', status: 'requested', intent: 'order' }, { event: 'approve', now }),
    ).toThrow(InvalidTransition);
  });
});
