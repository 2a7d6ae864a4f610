import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { transition } from '@kc/task-states';
import { medicationOrder, planTask, PUMP_RUNNING, reminderAbout as reminder } from '../../../test/fixtures/plans';
import { changesOfTaskClosedInEhr, isTaskClosedInEhr } from './tasks-closed-in-ehr';

const now = new Date('2027-01-10T00:00:00Z');
const session = (): Task => ({
  ...transition(planTask('t1', 'plan'), { event: 'approve', now }),
  focus: { reference: 'MedicationRequest/p1' },
  description: 'Infusion session',
});
const order = (id: string, status: MedicationRequest['status'] = 'active') => medicationOrder(id, status);
const closedInEhr = (status: Task['status']): Task => ({ ...session(), status });

describe('an infusion session an EHR closed by its Task status alone', () => {
  it('is one the service still has open, closed by its status (not its own closing, not a check done in the EHR)', () => {
    expect(isTaskClosedInEhr(closedInEhr('cancelled'))).toBe(true);
    expect(isTaskClosedInEhr(closedInEhr('completed'))).toBe(true);
    expect(isTaskClosedInEhr(session())).toBe(false); // still ready
    // Since session 44, whatever its approval orders (patient instructions: a CommunicationRequest).
    const instructions = { ...closedInEhr('cancelled'), focus: { reference: 'CommunicationRequest/c1' } };
    expect(isTaskClosedInEhr(instructions)).toBe(true);
    // A check orders nothing: cancelled, its reminders are revoked; completed, it is recorded as done (CheckDoneElsewhere).
    const { focus: _none, ...check } = closedInEhr('cancelled');
    expect(isTaskClosedInEhr(check)).toBe(true);
    expect(isTaskClosedInEhr({ ...check, status: 'completed' })).toBe(false);
    const rejectedHere = transition(session(), { event: 'reject', now, reason: 'not today' });
    expect(isTaskClosedInEhr(rejectedHere)).toBe(false);
  });

  it('cancelled: its order and the EHR’s replacement left open are cancelled, its reminders not sent revoked', () => {
    const changes = changesOfTaskClosedInEhr({
      task: closedInEhr('cancelled'),
      open: { order: order('o1'), administrations: [], leftOpen: [{ order: order('o2'), administrations: [] }] },
      reminders: [reminder('r1', 'Task/t1'), reminder('r2', 'Task/t1', 'completed'), reminder('r3', 'Task/other')],
    });
    expect(
      changes?.orders.map((o) => [o.written.id, o.written.status, (o.written as MedicationRequest).statusReason?.text]),
    ).toEqual([
      ['o1', 'cancelled', 'Its Task was cancelled in the EHR'],
      ['o2', 'cancelled', 'Its Task was cancelled in the EHR'],
    ]);
    expect(changes?.reminders.map((r) => [r.revoked.id, r.revoked.status])).toEqual([['r1', 'revoked']]);
  });

  it('completed: its order completed, as given', () => {
    const changes = changesOfTaskClosedInEhr({
      task: closedInEhr('completed'),
      open: { order: order('o1'), administrations: [] },
      reminders: [],
    });
    expect(changes?.orders.map((o) => [o.written.id, o.written.status])).toEqual([['o1', 'completed']]);
  });

  it('cancelled while the pump runs it: left for now; completed so, its order completed', () => {
    const running = { order: order('o1'), administrations: [PUMP_RUNNING] };
    expect(changesOfTaskClosedInEhr({ task: closedInEhr('cancelled'), open: running, reminders: [] })).toBe(undefined);
    expect(
      changesOfTaskClosedInEhr({ task: closedInEhr('completed'), open: running, reminders: [] })?.orders,
    ).toHaveLength(1);
  });

  it('cancelled after the pump gave it (the EHR’s cancel crossed the pump): its orders completed as given', () => {
    const given = { ...PUMP_RUNNING, id: 'ma1', status: 'completed' as const };
    const changes = changesOfTaskClosedInEhr({
      task: closedInEhr('cancelled'),
      open: { order: order('o1'), administrations: [given] },
      reminders: [reminder('r1', 'Task/t1')],
    });
    expect(changes?.orders.map((o) => [o.written.id, o.written.status])).toEqual([['o1', 'completed']]);
    expect(changes?.administration?.id).toBe('ma1');
    expect(changes?.reminders.map((r) => r.revoked.status)).toEqual(['revoked']);
  });

  it('nothing left open (its orders closed already, no reminders): nothing to write', () => {
    expect(changesOfTaskClosedInEhr({ task: closedInEhr('cancelled'), reminders: [] })).toBeUndefined();
    expect(
      changesOfTaskClosedInEhr({
        task: closedInEhr('cancelled'),
        open: { order: order('o1', 'cancelled'), administrations: [] },
        reminders: [],
      }),
    ).toBeUndefined();
  });
});
