import * as path from 'node:path';
import type { CarePlan, PlanDefinition, Procedure } from '@medplum/fhirtypes';
import { ProtocolCatalog, type ResolvedPlan } from '@kc/protocols';
import { infusionPlanAmong, type ProtocolSource } from './infusion-plan';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', '..', 'fhir-profiles'));
const LOW_DOSE = 'https://ketamine-careplans.example/fhir/PlanDefinition/ketamine-low-dose-series|1.0.0';
const PATHWAY = 'https://ehr.example/fhir/PlanDefinition/depression-pathway|1';
const GONE = 'https://ketamine-careplans.example/fhir/PlanDefinition/withdrawn|1.0.0';

/** An EHR's care pathway on the FHIR server: found, and follows up no infusion. */
const pathway: PlanDefinition = { resourceType: 'PlanDefinition', status: 'active', action: [{ title: 'Review' }] };
const protocols: ProtocolSource = {
  ofCarePlan: (carePlan: CarePlan): Promise<ResolvedPlan | undefined> => {
    const canonical = carePlan.instantiatesCanonical?.[0];
    if (canonical === LOW_DOSE)
      return Promise.resolve({ plan: catalog.findPlanDefinition('ketamine-low-dose-series')!, definitions: catalog });
    return Promise.resolve(canonical === PATHWAY ? { plan: pathway, definitions: catalog } : undefined);
  },
};
const plan = (id: string, canonical?: string): CarePlan => ({
  resourceType: 'CarePlan',
  id,
  status: 'active',
  intent: 'plan',
  subject: { reference: 'Patient/p1' },
  ...(canonical ? { instantiatesCanonical: [canonical] } : {}),
});
const charted = (code: string, ...plans: CarePlan[]): Procedure => ({
  resourceType: 'Procedure',
  status: 'completed',
  subject: { reference: 'Patient/p1' },
  code: { coding: [{ system: 'http://snomed.info/sct', code }] },
  basedOn: plans.map((p) => ({ reference: `CarePlan/${p.id}` })),
  performedDateTime: '2027-01-04T10:00:00Z',
});
const IV_INFUSION = '14152002';
const planOf = async (procedure: Procedure, plans: CarePlan[]) => {
  const found = await infusionPlanAmong(protocols, procedure, plans);
  return 'carePlan' in found ? found.carePlan.id : found;
};

describe('the plan an infusion is a session of, among those it names', () => {
  const ours = plan('ours', LOW_DOSE);
  const episode = plan('episode');
  const ehrPathway = plan('pathway', PATHWAY);
  const gone = plan('gone', GONE);

  it('is the first whose protocol follows up infusions like it, an EHR pathway named before it passed over', async () => {
    expect(await planOf(charted(IV_INFUSION, ehrPathway, episode, ours), [ehrPathway, episode, ours])).toBe('ours');
  });

  it('is none when it names only the EHR’s own plans (a pathway, an episode): linked on evidence as one naming none', async () => {
    expect(await planOf(charted(IV_INFUSION, ehrPathway, episode), [ehrPathway, episode])).toEqual({ none: true });
  });

  it('is ignored when it is no infusion of the protocol of a plan it names', async () => {
    expect(await planOf(charted('71388002', ehrPathway, ours), [ehrPathway, ours])).toEqual({
      ignored: "not an infusion of the CarePlan's protocol",
    });
  });

  it('fails on a plan whose protocol is nowhere, rather than be lost, when no plan it names follows it up', async () => {
    expect(await planOf(charted(IV_INFUSION, gone, ehrPathway), [gone, ehrPathway])).toEqual({ notFound: gone });
    expect(await planOf(charted(IV_INFUSION, gone, ours), [gone, ours])).toBe('ours');
  });

  it('reads only the plans it names, in its order', async () => {
    expect(await planOf(charted(IV_INFUSION, episode), [ours, episode])).toEqual({ none: true });
  });
});
