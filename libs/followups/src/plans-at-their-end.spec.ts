import type { CarePlan, MedicationRequest, Task } from '@medplum/fhirtypes';
import { CAREPLAN_KEY_SYSTEM } from '@kc/protocols';
import {
  planCompletedAtItsEnd,
  planReopenedForAnInfusion,
  planReopenedForItsNewEnd,
  plansPastTheirEnd,
} from './plans-at-their-end';

const applied = (end?: string, status: CarePlan['status'] = 'active'): CarePlan => ({
  resourceType: 'CarePlan',
  id: 'p',
  status,
  intent: 'plan',
  subject: { reference: 'Patient/a' },
  identifier: [{ system: CAREPLAN_KEY_SYSTEM, value: 'k' }],
  period: { start: '2027-01-01', ...(end ? { end } : {}) },
});
const task = (status: Task['status'], plan = 'CarePlan/p'): Task => ({
  resourceType: 'Task',
  status,
  intent: 'order',
  basedOn: [{ reference: plan }],
});
const order = (status: MedicationRequest['status']): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  status,
  intent: 'order',
  subject: { reference: 'Patient/a' },
  basedOn: [{ reference: 'CarePlan/p' }],
});
const none = { tasks: [], orders: [] };
const at = (iso: string) => new Date(iso);

describe('a plan completed at its end (planCompletedAtItsEnd)', () => {
  it('once its end has passed with nothing open: completed, tagged and noted', () => {
    const done = planCompletedAtItsEnd(applied('2027-02-01T12:00:00Z'), none, at('2027-02-01T12:00:00Z'));
    expect(done?.status).toBe('completed');
    expect(done?.meta?.tag?.map((t) => t.code)).toEqual(['completed-at-its-end']);
    expect(done?.note?.[0]).toMatchObject({ time: '2027-02-01T12:00:00.000Z' });
  });

  it('a date alone is the whole clinic day: over at the next midnight in the clinic’s zone', () => {
    const plan = applied('2027-02-01');
    expect(planCompletedAtItsEnd(plan, none, at('2027-02-01T23:00:00Z'))).toBeUndefined();
    expect(planCompletedAtItsEnd(plan, none, at('2027-02-02T00:00:00Z'))?.status).toBe('completed');
    // New York's 2 February begins at 05:00 UTC.
    expect(planCompletedAtItsEnd(plan, none, at('2027-02-02T04:00:00Z'), 'America/New_York')).toBeUndefined();
    expect(planCompletedAtItsEnd(plan, none, at('2027-02-02T05:00:00Z'), 'America/New_York')?.status).toBe('completed');
  });

  it('not while a Task under it is open or an order under it is still to give; closed ones and others’ do not count', () => {
    const now = at('2027-03-01T00:00:00Z');
    const plan = applied('2027-02-01');
    for (const status of ['draft', 'ready', 'in-progress', 'on-hold', 'requested'] as const)
      expect(planCompletedAtItsEnd(plan, { tasks: [task(status)], orders: [] }, now)).toBeUndefined();
    for (const status of ['active', 'on-hold'] as const)
      expect(planCompletedAtItsEnd(plan, { tasks: [], orders: [order(status)] }, now)).toBeUndefined();
    const closed = {
      tasks: [task('completed'), task('cancelled'), task('ready', 'CarePlan/other')],
      orders: [order('completed'), order('cancelled'), order('draft')],
    };
    expect(planCompletedAtItsEnd(plan, closed, now)?.status).toBe('completed');
  });

  it('not a plan with no end, one not active (a draft never activated, paused, over), nor one the EHR wrote', () => {
    const now = at('2027-03-01T00:00:00Z');
    expect(planCompletedAtItsEnd(applied(), none, now)).toBeUndefined();
    for (const status of ['draft', 'on-hold', 'revoked', 'completed'] as const)
      expect(planCompletedAtItsEnd(applied('2027-02-01', status), none, now)).toBeUndefined();
    expect(planCompletedAtItsEnd({ ...applied('2027-02-01'), identifier: undefined }, none, now)).toBeUndefined();
  });

  it('plansPastTheirEnd keeps the plans whose end has passed', () => {
    const plans = [applied('2027-02-01'), { ...applied('2027-04-01'), id: 'q' }, { ...applied(), id: 'r' }];
    expect(plansPastTheirEnd(plans, at('2027-03-01T00:00:00Z')).map((p) => p.id)).toEqual(['p']);
  });
});

describe('a plan completed at its end, its end moved by the EHR (planReopenedForItsNewEnd)', () => {
  const completed = planCompletedAtItsEnd(applied('2027-02-01'), none, at('2027-02-02T00:00:00Z'))!;

  it('active again, its tag off, noted, when its end is moved later or removed', () => {
    const later = planReopenedForItsNewEnd({ ...completed, period: { end: '2027-04-01' } }, at('2027-03-01T00:00:00Z'));
    expect(later?.status).toBe('active');
    expect(later?.meta?.tag ?? []).toEqual([]);
    expect(later?.note?.at(-1)?.text).toMatch(/^Active again/);
    expect(planReopenedForItsNewEnd({ ...completed, period: {} }, at('2027-03-01T00:00:00Z'))?.status).toBe('active');
  });

  it('not while its end has still passed, nor a plan the EHR completed', () => {
    expect(planReopenedForItsNewEnd(completed, at('2027-03-01T00:00:00Z'))).toBeUndefined();
    const byEhr: CarePlan = { ...applied('2027-04-01'), status: 'completed' };
    expect(planReopenedForItsNewEnd(byEhr, at('2027-03-01T00:00:00Z'))).toBeUndefined();
  });
});

describe('a plan completed at its end, an infusion charted under it since (planReopenedForAnInfusion)', () => {
  const completed = planCompletedAtItsEnd(applied('2027-02-01'), none, at('2027-02-02T00:00:00Z'))!;

  it('active again, its tag off, noted, its end still passed', () => {
    const again = planReopenedForAnInfusion(completed, at('2027-02-05T00:00:00Z'));
    expect(again?.status).toBe('active');
    expect(again?.period).toEqual(completed.period);
    expect(again?.meta?.tag ?? []).toEqual([]);
    expect(again?.note?.at(-1)?.time).toBe('2027-02-05T00:00:00.000Z');
    expect(again?.note?.at(-1)?.text).toMatch(/^Active again: an infusion was charted under it/);
  });

  it('not a plan the EHR completed or stopped, nor one still active', () => {
    const now = at('2027-02-05T00:00:00Z');
    expect(planReopenedForAnInfusion({ ...applied('2027-02-01'), status: 'completed' }, now)).toBeUndefined();
    expect(planReopenedForAnInfusion({ ...completed, status: 'revoked' }, now)).toBeUndefined();
    expect(planReopenedForAnInfusion(applied('2027-02-01'), now)).toBeUndefined();
  });
});
