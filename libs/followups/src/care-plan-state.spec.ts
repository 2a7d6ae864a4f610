import type { CarePlan } from '@medplum/fhirtypes';
import { carePlanReferencesOf, protocolPlanOf } from './care-plan-state';

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
