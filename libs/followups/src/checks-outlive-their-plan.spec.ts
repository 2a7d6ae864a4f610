import type { CarePlan, Task } from '@medplum/fhirtypes';
import { carePlanHoldsTask, isCheckOfAnInfusion } from './checks-outlive-their-plan';
import { planEndedForDeath, planOfDeathTakenBack } from './deceased-patients';

const NOW = new Date('2027-01-10T00:00:00Z');
const plan = (status: CarePlan['status']): CarePlan => ({
  resourceType: 'CarePlan',
  id: 'c1',
  status,
  intent: 'plan',
  subject: { reference: 'Patient/p1' },
});
const check: Pick<Task, 'reasonReference' | 'focus'> = { reasonReference: { reference: 'Procedure/i1' } };
const session: Pick<Task, 'reasonReference' | 'focus'> = { ...check, focus: { reference: 'MedicationRequest/o1' } };
const instructions: Pick<Task, 'reasonReference' | 'focus'> = {};

describe('a post-infusion check outlives its plan', () => {
  it('is a follow-up of an infusion that orders nothing', () => {
    expect([check, session, instructions].map(isCheckOfAnInfusion)).toEqual([true, false, false]);
  });

  it('a plan holding care holds every Task', () => {
    for (const status of ['active', 'draft'] as const)
      for (const t of [check, session, instructions]) expect(carePlanHoldsTask(plan(status), t)).toEqual({ ok: true });
  });

  it('one stopped, completed or paused in the EHR holds its checks still, not its sessions or instructions', () => {
    for (const status of ['revoked', 'completed', 'on-hold'] as const) {
      expect(carePlanHoldsTask(plan(status), check)).toEqual({ ok: true });
      expect(carePlanHoldsTask(plan(status), session)).toMatchObject({ ok: false });
      expect(carePlanHoldsTask(plan(status), instructions)).toMatchObject({ ok: false });
    }
  });

  it('one written in error, or ended for the patient’s death (taken back or not), holds none', () => {
    expect(carePlanHoldsTask(plan('entered-in-error'), check)).toEqual({
      ok: false,
      reason: 'its care plan was entered in error',
      closed: true,
    });
    const ended = planEndedForDeath(plan('active'), NOW)!;
    expect(carePlanHoldsTask(ended, check)).toEqual({
      ok: false,
      reason: 'its care plan was stopped (revoked)',
      closed: true,
    });
    expect(carePlanHoldsTask(planOfDeathTakenBack(ended, NOW)!, check)).toMatchObject({ ok: false });
  });
});
