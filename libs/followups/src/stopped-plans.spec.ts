import type { MedicationAdministration, MedicationRequest, Procedure, Task } from '@medplum/fhirtypes';
import { heldTask, stateOf, transition } from '@kc/task-states';
import {
  carePlan as plan,
  medicationOrder,
  planTask,
  PUMP_RUNNING,
  reminderAbout as reminder,
} from '../../../test/fixtures/plans';
import {
  approvedOnEndedPlans,
  patientsKeepingChecks,
  sessionGivenAtThePump,
  sessionsGivenOnStoppedPlans,
  withdrawalsForStoppedPlans,
} from './stopped-plans';
import { planEndedForDeath } from './deceased-patients';

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

  it("a post-infusion check outlives a plan stopped or completed, not one in error or ended for a death, nor its patient's death", () => {
    const check = (id: string, carePlanId: string): Task => ({
      ...approved(task(id, carePlanId)),
      for: { reference: 'Patient/p1' },
      reasonReference: { reference: 'Procedure/infusion-1' },
    });
    const plans = new Map([
      ['CarePlan/revoked', plan('revoked', 'revoked')],
      ['CarePlan/completed', plan('completed', 'completed')],
      ['CarePlan/error', plan('error', 'entered-in-error')],
      ['CarePlan/death', planEndedForDeath(plan('death', 'active'), now)!],
    ]);
    const tasks = [
      check('kept-revoked', 'revoked'),
      check('kept-completed', 'completed'),
      check('in-error', 'error'),
      check('death', 'death'),
      // A session of the same infusion: its order to give is the plan's.
      {
        ...approved(task('session', 'revoked')),
        reasonReference: { reference: 'Procedure/infusion-1' },
        focus: { reference: 'MedicationRequest/o' },
      },
    ];
    const withdrawn = (deceased?: Set<string>) =>
      withdrawalsForStoppedPlans({ tasks, carePlans: plans, proposals: new Map(), now, deceased }).map(
        (w) => w.task.id,
      );
    expect(withdrawn()).toEqual(['in-error', 'death', 'session']);
    expect(approvedOnEndedPlans(tasks, plans).map((t) => t.id)).toEqual(['in-error', 'death', 'session']);
    // The patients to read, whether they are recorded as deceased: those of the checks kept.
    expect(patientsKeepingChecks(tasks, plans)).toEqual(['Patient/p1']);
    // Another patient recorded as deceased: nothing more; this one: every one goes.
    expect(withdrawn(new Set(['Patient/p2']))).toEqual(['in-error', 'death', 'session']);
    expect(withdrawn(new Set(['Patient/p1']))).toEqual([
      'kept-revoked',
      'kept-completed',
      'in-error',
      'death',
      'session',
    ]);
    expect(approvedOnEndedPlans(tasks, plans, undefined, new Set(['Patient/p1']))).toHaveLength(5);
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

describe("a stopped plan's session the pump gave, charted after its infusion was followed up", () => {
  const infusion = (id: string, carePlanId: string): Procedure => ({
    resourceType: 'Procedure',
    id,
    status: 'completed',
    subject: { reference: 'Patient/p1' },
    basedOn: [{ reference: `CarePlan/${carePlanId}` }],
    performedPeriod: { start: '2027-01-09T09:00:00Z', end: '2027-01-09T10:00:00Z' },
  });
  const pumped = (status: MedicationAdministration['status']): MedicationAdministration => ({
    ...PUMP_RUNNING,
    id: `ma-${status}`,
    status,
    request: { reference: 'MedicationRequest/o-ready' },
    effectivePeriod: { start: '2027-01-09T09:05:00Z', end: '2027-01-09T09:55:00Z' },
  });
  const ready = approved(task('ready', 'revoked'));
  const given = (administrations: MedicationAdministration[], infusions: Procedure[], tasks = [ready]) =>
    sessionsGivenOnStoppedPlans({
      tasks,
      carePlans,
      orders: new Map([['ready', { order: order('o-ready'), administrations }]]),
      infusions,
      reminders: [reminder('r1', 'Task/ready'), reminder('r3', 'Task/other')],
      now,
      zone: 'UTC',
    });

  it('done by the infusion on record, its order completed and its reminders not sent revoked', () => {
    const [answered] = given([pumped('completed')], [infusion('inf', 'revoked')]);
    expect(stateOf(answered.task.written)).toBe('done');
    expect(answered.task.written.output?.[0].valueReference).toEqual({
      reference: 'Procedure/inf',
      display: 'infusion of 2027-01-09',
    });
    expect(answered.orders.map((o) => [o.read.id, o.written.status])).toEqual([['o-ready', 'completed']]);
    expect(answered.reminders.map((r) => [r.revoked.id, r.revoked.status])).toEqual([['r1', 'revoked']]);
    expect(answered.administration.id).toBe('ma-completed');
  });

  it('left while the pump runs, before its infusion is recorded (its follow-up answers it), or on a plan still held', () => {
    expect(sessionGivenAtThePump({ order: order('o-ready'), administrations: [pumped('in-progress')] })).toBe(false);
    expect(given([pumped('in-progress')], [infusion('inf', 'revoked')])).toEqual([]);
    expect(given([pumped('completed')], [])).toEqual([]);
    // Another plan's infusion at that time did not give it.
    expect(given([pumped('completed')], [infusion('inf', 'paused')])).toEqual([]);
    expect(given([pumped('completed')], [infusion('inf', 'paused')], [approved(task('ready', 'paused'))])).toEqual([]);
  });
});
