import { join } from 'node:path';
import type { Bundle, CarePlan, MedicationRequest } from '@medplum/fhirtypes';
import type { PlanDefinitions } from '@kc/nest-core';
import { ProtocolCatalog } from '@kc/protocols';
import type { CdsRequest } from './cds-types';
import { EhrProtocolEligibility } from './ehr-protocol-eligibility';
import type { PrefetchResolver } from './prefetch';

const catalog = ProtocolCatalog.fromDirectory(join(__dirname, '../../../../fhir-profiles'));

const order: MedicationRequest = {
  resourceType: 'MedicationRequest',
  status: 'draft',
  intent: 'order',
  subject: { reference: 'Patient/p1' },
  instantiatesCanonical: ['http://ehr.example/ActivityDefinition/infusion|1'],
};
const carePlans: Bundle = {
  resourceType: 'Bundle',
  type: 'searchset',
  entry: [
    {
      resource: {
        resourceType: 'CarePlan',
        status: 'active',
        intent: 'plan',
        subject: { reference: 'Patient/p1' },
        instantiatesCanonical: ['http://ehr.example/PlanDefinition/series|1'],
      } satisfies CarePlan,
    },
  ],
};
const request = { hook: 'order-sign', hookInstance: 'h1', context: {} } as unknown as CdsRequest;

describe('EhrProtocolEligibility', () => {
  it('a FHIR server that does not answer in the call’s budget: the EHR’s protocols are said not checked, the call goes on', async () => {
    const never = { ofCarePlan: () => new Promise(() => undefined) } as unknown as PlanDefinitions;
    const eligibility = new EhrProtocolEligibility(catalog, never, {} as PrefetchResolver);
    const budget = AbortSignal.timeout(50);
    await expect(eligibility.inputsFor([order], carePlans, request, 'p1', budget)).resolves.toEqual({
      inputs: [],
      unchecked: [
        {
          code: 'ehr-protocols',
          description: 'The conditions of the EHR’s protocols (the FHIR server did not answer in time)',
        },
      ],
      fetched: 0,
    });
  });

  it('an order of the catalog’s own definitions reads nothing', async () => {
    const unused = {} as PlanDefinitions;
    const eligibility = new EhrProtocolEligibility(catalog, unused, {} as PrefetchResolver);
    const catalogOrder = {
      ...order,
      instantiatesCanonical: [
        'https://ketamine-careplans.example/fhir/ActivityDefinition/ketamine-low-dose-infusion|1.0.0',
      ],
    };
    const found = await eligibility.inputsFor([catalogOrder], carePlans, request, 'p1', AbortSignal.timeout(50));
    expect(found).toEqual({ inputs: [], unchecked: [], fetched: 0 });
  });
});
