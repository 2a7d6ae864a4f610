import type { MedicationAdministration, MedicationRequest, Task } from '@medplum/fhirtypes';
import { PROTOCOL_WINDOW_EXTENSION, TASK_KEY_SYSTEM } from '@kc/protocols';
import { orderKeyFor, stateOf, transition } from '@kc/task-states';
import { medicationOrder, planTask, PUMP_RUNNING, reminderAbout } from '../../../test/fixtures/plans';
import { replanWithoutInfusion, type ReplanInput } from './replan-without-infusion';

const approvedAt = new Date('2027-01-01T00:00:00Z');
const now = new Date('2027-01-20T12:00:00Z');
const X = { reference: 'Procedure/inf-x' };

/** A session of plan cp1 due `start`..`end`, its proposal MedicationRequest/p-<id>, within its protocol's window. */
function session(id: string, start: string, end: string, approved = false): Task {
  const task = planTask(id, 'cp1', approved ? approvedAt : undefined);
  return {
    ...task,
    identifier: [{ system: TASK_KEY_SYSTEM, value: `cp1:apply:${id}` }],
    description: `Session ${id}`,
    focus: { reference: `MedicationRequest/p-${id}` },
    restriction: { period: { start, end } },
    extension: [{ url: PROTOCOL_WINDOW_EXTENSION, valuePeriod: { start, end } }],
  };
}
const proposal = (id: string): MedicationRequest => ({
  ...medicationOrder(`p-${id}`, 'draft'),
  intent: 'proposal',
  meta: { versionId: '1' },
});
const keyed = (order: MedicationRequest, taskId: string): MedicationRequest => ({
  ...order,
  identifier: [orderKeyFor(taskId)],
});

// What the infusion X closed: a session it was recorded as giving (done) and a booster it made moot (superseded).
const done = transition(session('first', '2027-01-02T00:00:00Z', '2027-01-09T00:00:00Z', true), {
  event: 'complete',
  now: approvedAt,
  output: X,
});
const moot = transition(session('booster', '2027-01-25T00:00:00Z', '2027-02-01T00:00:00Z'), {
  event: 'supersede',
  now: approvedAt,
  output: X,
});
// What it planned: its check (awaiting approval), the next session (approved), one the pump has begun.
const planned = (t: Task): Task => ({ ...t, reasonReference: X });
const check = planned(session('check', '2027-01-08T00:00:00Z', '2027-01-15T00:00:00Z'));
const next = planned(session('next', '2027-01-15T00:00:00Z', '2027-01-22T00:00:00Z', true));
const running = planned(session('running', '2027-01-15T00:00:00Z', '2027-01-22T00:00:00Z', true));
// Another infusion's: untouched.
const other = transition(session('other', '2026-12-20T00:00:00Z', '2026-12-27T00:00:00Z', true), {
  event: 'complete',
  now: approvedAt,
  output: { reference: 'Procedure/inf-real' },
});

const input = (over: Partial<ReplanInput> = {}): ReplanInput => ({
  procedureId: 'inf-x',
  performed: { start: '2027-01-05T09:00:00Z', end: '2027-01-05T10:00:00Z' },
  tasks: [done, moot, check, next, running, other],
  proposals: new Map(['first', 'booster', 'check', 'next'].map((id) => [`MedicationRequest/p-${id}`, proposal(id)])),
  openOrders: new Map([
    ['next', { order: keyed(medicationOrder('o-next', 'on-hold'), 'next'), administrations: [] }],
    [
      'running',
      {
        order: keyed(medicationOrder('o-running'), 'running'),
        administrations: [{ ...PUMP_RUNNING, request: { reference: 'MedicationRequest/o-running' } }],
      },
    ],
  ]),
  closedOrders: new Map([
    ['first', { orders: [keyed(medicationOrder('o-first', 'completed'), 'first')], administrations: [] }],
  ]),
  reminders: [reminderAbout('r-next', 'Task/next'), reminderAbout('r-check', 'Task/check')],
  now,
  zone: 'UTC',
  ...over,
});

describe('planning again without an infusion recorded in error', () => {
  it('what it planned is withdrawn with its requests; a session the pump has begun is left', () => {
    const replan = replanWithoutInfusion(input());
    expect(replan.withdrawn.map((w) => [w.task.id, stateOf(w.withdrawn), w.withdrawn.status])).toEqual([
      ['check', 'withdrawn', 'cancelled'],
      ['next', 'withdrawn', 'cancelled'],
    ]);
    const why = 'Withdrawn: it was planned from the infusion Procedure/inf-x of 2027-01-05, recorded in error';
    expect(replan.withdrawn[0].withdrawn.statusReason?.text).toBe(why);
    expect(replan.withdrawn[0].proposal?.cancelled.status).toBe('cancelled');
    expect(replan.withdrawn[1].order?.cancelled).toMatchObject({ id: 'o-next', status: 'cancelled' });
    expect(replan.withdrawn.flatMap((w) => w.reminders.map((r) => [r.revoked.id, r.revoked.status]))).toEqual([
      ['r-check', 'revoked'],
      ['r-next', 'revoked'],
    ]);
    expect(replan.begun.map((t) => t.id)).toEqual(['running']);
  });

  it('a session it planned that the EHR closed by its status stays as the EHR closed it', () => {
    const completedInEhr = { ...next, status: 'completed' as const };
    const replan = replanWithoutInfusion(input({ tasks: [done, moot, check, completedInEhr, running, other] }));
    expect(replan.withdrawn.map((w) => w.task.id)).toEqual(['check']);
  });

  it('what it closed is entered in error and proposed again, awaiting approval, with a copy of its proposal', () => {
    const replan = replanWithoutInfusion(input());
    expect(replan.inError.map((e) => [e.task.read.id, e.task.written.status, stateOf(e.task.written)])).toEqual([
      ['first', 'entered-in-error', 'recorded-in-error'],
      ['booster', 'entered-in-error', 'recorded-in-error'],
    ]);
    // The order it completed was not given: cancelled, saying why (an EHR reading its status alone reads it right).
    expect(
      replan.inError[0].orders.map((o) => [
        o.written.id,
        o.written.status,
        (o.written as MedicationRequest).statusReason?.text,
      ]),
    ).toEqual([
      [
        'o-first',
        'cancelled',
        'Not given: the infusion Procedure/inf-x of 2027-01-05, which completed it, was recorded in error',
      ],
    ]);
    const [first, booster] = replan.proposedAgain;
    expect(first.replaces.id).toBe('first');
    expect(first.task).toMatchObject({
      status: 'draft',
      intent: 'plan',
      description: 'Session first',
      identifier: [{ system: TASK_KEY_SYSTEM, value: 'cp1:in-error-inf-x:first' }],
      focus: { reference: first.proposal!.fullUrl },
      statusReason: {
        text: 'Proposed again: the infusion Procedure/inf-x of 2027-01-05, which closed it, was recorded in error',
      },
    });
    expect(stateOf(first.task)).toBe('awaiting-approval');
    expect(first.task.id).toBeUndefined();
    expect(first.task.output).toBeUndefined();
    expect(first.proposal?.resource).toMatchObject({ status: 'draft', intent: 'proposal' });
    expect(first.proposal?.resource.id).toBeUndefined();
    // Its window ended: one as long from now, the protocol's window grown to hold it. The booster's is still to come.
    expect(first.task.restriction?.period).toEqual({
      start: '2027-01-20T12:00:00.000Z',
      end: '2027-01-27T12:00:00.000Z',
    });
    expect(first.task.extension?.find((e) => e.url === PROTOCOL_WINDOW_EXTENSION)?.valuePeriod).toEqual({
      start: '2027-01-02T00:00:00Z',
      end: '2027-01-27T12:00:00.000Z',
    });
    expect(booster.task.restriction?.period).toEqual({ start: '2027-01-25T00:00:00Z', end: '2027-02-01T00:00:00Z' });
    // The same replan again names the same new resources (a retry writes them once).
    expect(replanWithoutInfusion(input()).proposedAgain.map((p) => p.fullUrl)).toEqual(
      replan.proposedAgain.map((p) => p.fullUrl),
    );
  });

  it('a session it closed that the pump recorded giving happened: it stays done, and is not proposed again', () => {
    const given: MedicationAdministration = {
      ...PUMP_RUNNING,
      status: 'completed',
      request: { reference: 'MedicationRequest/o-first' },
    };
    const replan = replanWithoutInfusion(
      input({
        closedOrders: new Map([
          ['first', { orders: [keyed(medicationOrder('o-first', 'completed'), 'first')], administrations: [given] }],
        ]),
      }),
    );
    expect(replan.givenAtThePump.map((t) => t.id)).toEqual(['first']);
    expect(replan.inError.map((e) => e.task.read.id)).toEqual(['booster']);
    expect(replan.proposedAgain.map((p) => p.replaces.id)).toEqual(['booster']);
  });
});
