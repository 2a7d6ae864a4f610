import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { heldTask, transition } from '@kc/task-states';
import { medicationOrder, planTask, PUMP_RUNNING, reminderAbout as reminder } from '../../../test/fixtures/plans';
import { DELETED_TASK_REASON, withdrawalOfDeletedTask } from './deleted-tasks';

const now = new Date('2027-01-10T00:00:00Z');
const approved = (t: Task) => transition(t, { event: 'approve', now });
const order = (id: string, status: MedicationRequest['status'] = 'active') => medicationOrder(id, status);

describe('a Task deleted on the FHIR server: what it authorised is withdrawn', () => {
  it('approved: its order still to be given cancelled, its reminders not sent revoked', () => {
    const withdrawal = withdrawalOfDeletedTask({
      task: approved(planTask('t1', 'plan')),
      open: { order: order('o1'), administrations: [] },
      reminders: [reminder('r1', 'Task/t1'), reminder('r2', 'Task/t1', 'completed'), reminder('r3', 'Task/other')],
    });
    expect(withdrawal?.order?.cancelled).toMatchObject({
      id: 'o1',
      status: 'cancelled',
      statusReason: { text: DELETED_TASK_REASON },
    });
    expect(withdrawal?.reminders.map((r) => [r.revoked.id, r.revoked.status])).toEqual([['r1', 'revoked']]);
  });

  it('held for a contraindication: its held order cancelled too', () => {
    const held = heldTask(approved(planTask('t1', 'plan')), order('o1', 'on-hold'));
    const withdrawal = withdrawalOfDeletedTask({
      task: held,
      open: { order: order('o1', 'on-hold'), administrations: [] },
      reminders: [],
    });
    expect(withdrawal?.order?.cancelled.status).toBe('cancelled');
  });

  it('awaiting approval: its draft proposal cancelled', () => {
    const task = planTask('t1', 'plan');
    const proposal = { ...order('p1'), status: 'draft' as const, intent: 'proposal' as const };
    const withdrawal = withdrawalOfDeletedTask({ task, proposal, reminders: [] });
    expect(withdrawal?.proposal?.cancelled).toMatchObject({ id: 'p1', status: 'cancelled' });
    expect(withdrawal?.order).toBeUndefined();
  });

  it('nothing when the pump has begun the session, when the Task was closed already, or when nothing is left open', () => {
    const task = approved(planTask('t1', 'plan'));
    expect(
      withdrawalOfDeletedTask({ task, open: { order: order('o1'), administrations: [PUMP_RUNNING] }, reminders: [] }),
    ).toBeUndefined();
    const rejected = transition(task, { event: 'reject', now, reason: 'not today' });
    expect(
      withdrawalOfDeletedTask({ task: rejected, open: { order: order('o1'), administrations: [] }, reminders: [] }),
    ).toBeUndefined();
    expect(withdrawalOfDeletedTask({ task, reminders: [] })).toBeUndefined();
  });
});
