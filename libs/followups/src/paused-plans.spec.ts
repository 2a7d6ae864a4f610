import type { DetectedIssue, MedicationRequest, ServiceRequest } from '@medplum/fhirtypes';
import { HELD_FOR_PLAN_EXTENSION, isHeldForPausedPlan, pausedPlanOrder, PLAN_PAUSED_HOLD } from '@kc/task-states';
import { carePlan as plan, medicationOrder, planTask, PUMP_RUNNING } from '../../../test/fixtures/plans';
import {
  approvedOnPausedPlans,
  heldNamingItsPlan,
  ordersToHoldWhilePaused,
  ordersToResume,
  pausedPlanOf,
} from './paused-plans';

const now = new Date('2027-01-10T00:00:00Z');
const order = (id: string, carePlan: string, status: MedicationRequest['status'] = 'active') =>
  medicationOrder(id, status, carePlan);
const unresolved = (carePlan: string): DetectedIssue => ({
  resourceType: 'DetectedIssue',
  status: 'final',
  implicated: [{ reference: `CarePlan/${carePlan}` }],
});

describe("a paused plan's approved orders: held while it is paused, released when it resumes clear", () => {
  it('holds the active orders of approved Tasks on paused plans, not one whose session the pump has begun', () => {
    const task = (id: string, carePlan: string, approve = true) => planTask(id, carePlan, approve ? now : undefined);
    const carePlans = new Map([
      ['CarePlan/paused', plan('paused', 'on-hold')],
      ['CarePlan/active', plan('active', 'active')],
    ]);
    const tasks = [task('a', 'paused'), task('b', 'paused', false), task('c', 'active')];
    expect(approvedOnPausedPlans(tasks, carePlans).map((t) => t.id)).toEqual(['a']);

    const held = ordersToHoldWhilePaused([
      { order: order('o1', 'paused'), administrations: [] },
      { order: order('o2', 'paused', 'on-hold'), administrations: [] },
      {
        order: order('o3', 'paused'),
        administrations: [PUMP_RUNNING],
      },
    ]);
    expect(held.map((h) => h.read.id)).toEqual(['o1']);
    expect(held[0].changed).toMatchObject({
      status: 'on-hold',
      statusReason: { coding: [PLAN_PAUSED_HOLD] },
      meta: { tag: [PLAN_PAUSED_HOLD] },
    });
  });

  it('releases when the plan holds care again and no contraindication on it is unresolved', () => {
    const held = (id: string, carePlan: string) => pausedPlanOrder(order(id, carePlan));
    const resumed = ordersToResume({
      orders: [
        held('resumed', 'resumed'),
        held('still-paused', 'paused'),
        held('stopped', 'stopped'),
        held('contraindicated', 'contraindicated'),
        // Held for something else (a pharmacist's hold): not this service's to release.
        order('other-hold', 'resumed', 'on-hold'),
      ],
      carePlans: new Map([
        ['CarePlan/resumed', plan('resumed', 'active')],
        ['CarePlan/paused', plan('paused', 'on-hold')],
        ['CarePlan/stopped', plan('stopped', 'revoked')],
        ['CarePlan/contraindicated', plan('contraindicated', 'active')],
      ]),
      issues: new Map([['CarePlan/contraindicated', [unresolved('contraindicated')]]]),
    });
    expect(resumed.map((r) => r.read.id)).toEqual(['resumed']);
    expect(resumed[0].changed.status).toBe('active');
    expect((resumed[0].changed as MedicationRequest).statusReason).toBeUndefined();
    expect(resumed[0].changed.meta?.tag).toBeUndefined();
  });

  it('a hold told by its reason, not its tag (HAPI keeps a tag an update drops); a ServiceRequest by its extension', () => {
    const taggedOnly: MedicationRequest = {
      ...order('o', 'p', 'on-hold'),
      meta: { tag: [PLAN_PAUSED_HOLD] },
      statusReason: { text: 'Held by the pharmacy' },
    };
    expect(isHeldForPausedPlan(taggedOnly)).toBe(false);
    const service: ServiceRequest = {
      resourceType: 'ServiceRequest',
      id: 's',
      status: 'active',
      intent: 'order',
      subject: { reference: 'Patient/p1' },
    };
    const heldService = pausedPlanOrder(service);
    expect(heldService.status).toBe('on-hold');
    expect(isHeldForPausedPlan(heldService)).toBe(true);
  });

  it('an order of the EHR’s naming no plan is held naming its Task’s plan, released by it, and left as it was', () => {
    const { basedOn: _none, ...ehrOrder } = order('ehr', 'paused');
    const [hold] = ordersToHoldWhilePaused([{ order: ehrOrder, administrations: [], plan: 'CarePlan/paused' }]);
    expect(hold.changed.extension).toEqual([
      { url: HELD_FOR_PLAN_EXTENSION, valueReference: { reference: 'CarePlan/paused' } },
    ]);
    expect(pausedPlanOf(hold.changed)).toBe('CarePlan/paused');
    // One naming the plan already gets no extension.
    const [named] = ordersToHoldWhilePaused([
      { order: order('ours', 'paused'), administrations: [], plan: 'CarePlan/paused' },
    ]);
    expect(named.changed.extension).toBeUndefined();

    const [release] = ordersToResume({
      orders: [hold.changed],
      carePlans: new Map([['CarePlan/paused', plan('paused', 'active')]]),
      issues: new Map(),
    });
    expect(release.changed).toEqual({ ...ehrOrder, meta: {} });
  });

  it('an order of the EHR’s whose hold lost its plan (rewritten whole) takes it from the session approved on it', () => {
    const { basedOn: _none, ...ehrOrder } = order('ehr', 'paused');
    const [hold] = ordersToHoldWhilePaused([{ order: ehrOrder, administrations: [], plan: 'CarePlan/paused' }]);
    const { extension: _dropped, ...rewritten } = hold.changed;
    expect(pausedPlanOf(rewritten)).toBeUndefined();
    const session = planTask('session', 'paused', new Date('2027-01-01T09:00:00Z'));
    const approvedOnIt = { ...session, basedOn: [...session.basedOn!, { reference: 'MedicationRequest/ehr' }] };
    const other = planTask('other', 'other', new Date('2027-01-01T09:00:00Z'));

    const named = heldNamingItsPlan(rewritten, [other, approvedOnIt]);
    expect(pausedPlanOf(named)).toBe('CarePlan/paused');
    const [release] = ordersToResume({
      orders: [named],
      carePlans: new Map([['CarePlan/paused', plan('paused', 'active')]]),
      issues: new Map(),
    });
    expect(release.changed.status).toBe('active');
    expect(release.changed.extension).toBeUndefined();
    // No session rests on it, or it is not held for a paused plan: left as it is.
    expect(heldNamingItsPlan(rewritten, [other])).toBe(rewritten);
    expect(heldNamingItsPlan(ehrOrder, [approvedOnIt])).toBe(ehrOrder);
  });
});
