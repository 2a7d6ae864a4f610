import type { CarePlan } from '@medplum/fhirtypes';
import { carePlanReferencesOf, dueAfterPlanEnd, planEndsAt, protocolPlanOf } from './care-plan-state';

const plan = (id: string, canonical?: string): CarePlan => ({
  resourceType: 'CarePlan',
  id,
  status: 'active',
  intent: 'plan',
  subject: { reference: 'Patient/p1' },
  ...(canonical ? { instantiatesCanonical: [canonical] } : {}),
});

describe('the plan an infusion names', () => {
  const basedOn = [
    { reference: 'ServiceRequest/s1' },
    { reference: 'CarePlan/ehr-episode' },
    { reference: 'CarePlan/ours' },
  ];

  it('every CarePlan it is based on, in order', () => {
    expect(carePlanReferencesOf({ basedOn })).toEqual(['CarePlan/ehr-episode', 'CarePlan/ours']);
    expect(carePlanReferencesOf({})).toEqual([]);
  });

  it('is the first of them that instantiates a protocol, not an EHR’s own plan named before it', () => {
    const plans = [plan('ehr-episode'), plan('ours', 'https://x/PlanDefinition/low-dose|1')];
    expect(protocolPlanOf({ basedOn }, plans)?.id).toBe('ours');
    expect(protocolPlanOf({ basedOn }, [plan('ehr-episode')])).toBeUndefined();
    // A plan not read (deleted) is passed over.
    expect(protocolPlanOf({ basedOn }, [plans[1]])?.id).toBe('ours');
  });
});

describe('a plan’s end date (CarePlan.period.end)', () => {
  const ending = (end?: string) => ({ period: { start: '2027-01-01', end } });

  it('a day alone is the whole day in the clinic: the plan ends at the next day’s start there', () => {
    expect(planEndsAt(ending('2027-03-01'))).toBe(Date.parse('2027-03-02T00:00:00Z'));
    expect(planEndsAt(ending('2027-03-01'), 'America/New_York')).toBe(Date.parse('2027-03-02T05:00:00Z'));
    expect(planEndsAt(ending('2027-03-01T12:00:00Z'))).toBe(Date.parse('2027-03-01T12:00:00Z'));
    expect(planEndsAt(ending())).toBeUndefined();
  });

  it('a session beginning on its last day is within it; one beginning the day after is not', () => {
    const plan = ending('2027-03-01');
    expect(dueAfterPlanEnd(plan, { start: '2027-03-01T09:00:00Z', end: '2027-03-05T09:00:00Z' })).toBe(false);
    expect(dueAfterPlanEnd(plan, { start: '2027-03-02T00:00:00Z', end: '2027-03-05T09:00:00Z' })).toBe(true);
    expect(dueAfterPlanEnd(ending(), { start: '2030-01-01T00:00:00Z' })).toBe(false);
  });
});
