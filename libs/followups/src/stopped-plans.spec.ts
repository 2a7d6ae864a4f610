import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { heldTask, stateOf, transition } from '@kc/task-states';
import {
  carePlan as plan,
  medicationOrder,
  planTask,
  PUMP_RUNNING,
  reminderAbout as reminder,
} from '../../../test/fixtures/plans';
import { approvedOnEndedPlans, withdrawalsForStoppedPlans } from './stopped-plans';

const now = new Date('2027-01-10T00:00:00Z');
const carePlans = new Map([
  ['CarePlan/revoked', plan('revoked', 'revoked')],
  ['CarePlan/paused', plan('paused', 'on-hold')],
]);
const task = (id: string, carePlanId: string) => planTask(id, carePlanId);
const approved = (t: Task) => transition(t, { event: 'approve', now });
const order = (id: string, status: MedicationRequest['status'] = 'active') => medicationOrder(id, status);

describe("a stopped plan's open Tasks, withdrawn", () => {
  it('approved (ready or held): the order still to be given cancelled and the reminders not sent revoked', () => {
    const ready = approved(task('ready', 'revoked'));
    const held = heldTask(approved(task('held', 'revoked')), order('o-held', 'on-hold'));
    const tasks = [ready, held, approved(task('paused', 'paused'))];
    expect(approvedOnEndedPlans(tasks, carePlans).map((t) => t.id)).toEqual(['ready', 'held']);
    const withdrawals = withdrawalsForStoppedPlans({
      tasks,
      carePlans,
      proposals: new Map(),
      orders: new Map([
        ['ready', { order: order('o-ready'), administrations: [] }],
        ['held', { order: order('o-held', 'on-hold'), administrations: [] }],
      ]),
      reminders: [
        reminder('r1', 'Task/ready'),
        reminder('r2', 'Task/ready', 'completed'),
        reminder('r3', 'Task/other'),
      ],
      now,
    });
    expect(withdrawals.map((w) => w.task.id)).toEqual(['ready', 'held']);
    const why = 'Withdrawn: its care plan was stopped (revoked)';
    for (const w of withdrawals) {
      expect(stateOf(w.withdrawn)).toBe('withdrawn');
      expect(w.withdrawn.status).toBe('cancelled');
      expect(w.order?.cancelled).toMatchObject({ status: 'cancelled', statusReason: { text: why } });
    }
    // Only the reminder still to be sent about that Task.
    expect(withdrawals[0].reminders.map((r) => [r.revoked.id, r.revoked.status])).toEqual([['r1', 'revoked']]);
    expect(withdrawals[1].reminders).toEqual([]);
  });

  it('one whose session the pump has begun is left to its infusion; a paused plan keeps its Tasks', () => {
    const ready = approved(task('ready', 'revoked'));
    const withdrawals = withdrawalsForStoppedPlans({
      tasks: [ready, task('waiting', 'paused')],
      carePlans,
      proposals: new Map(),
      orders: new Map([
        [
          'ready',
          {
            order: order('o-ready'),
            administrations: [PUMP_RUNNING],
          },
        ],
      ]),
      now,
    });
    expect(withdrawals).toEqual([]);
  });
});
