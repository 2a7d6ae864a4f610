import type { CarePlan } from '@medplum/fhirtypes';
import { carePlanTakesFollowUps, NOT_BASED_ON_A_CAREPLAN } from '@kc/followups';
import { ignoredWhy } from './follow-up.metrics';

/** Why the follow-up ignores an infusion under a plan of this status, as carePlanTakesFollowUps words it. */
const closedPlanReason = (status: CarePlan['status']) => {
  const open = carePlanTakesFollowUps({ resourceType: 'CarePlan', status, intent: 'plan', subject: {} });
  return open.ok ? '' : open.reason;
};

describe('why an infusion event was not followed up, as a metric label (ignoredWhy)', () => {
  it('a closed or missing plan by its status; a copy; an infusion naming no plan; anything else not an infusion', () => {
    // The words the follow-up ignores them with, so a change of wording cannot turn them into not-an-infusion.
    expect(ignoredWhy(closedPlanReason('revoked'))).toBe('plan-revoked');
    expect(ignoredWhy(closedPlanReason('completed'))).toBe('plan-completed');
    expect(ignoredWhy(closedPlanReason('entered-in-error'))).toBe('plan-entered-in-error');
    expect(ignoredWhy('CarePlan not found')).toBe('plan-not-found');
    expect(ignoredWhy('Procedure not found')).toBe('procedure-not-found');
    expect(ignoredWhy('charted twice: Procedure/abc was charted for the same time on this plan')).toBe('charted-twice');
    expect(ignoredWhy(`${NOT_BASED_ON_A_CAREPLAN}, and none of the patient's plans is tied to it`)).toBe('no-plan');
    expect(ignoredWhy('it names no care plan of a protocol (only the EHR’s own), and none')).toBe('no-plan');
    expect(ignoredWhy('status is in-progress, not completed')).toBe('not-an-infusion');
    expect(ignoredWhy('not an infusion naming no plan')).toBe('not-an-infusion');
  });

  it('never a label that names an id', () => {
    expect(ignoredWhy('CarePlan is revoked at Patient/123')).toBe('not-an-infusion');
  });
});
