import { join } from 'node:path';
import type { CarePlan, PlanDefinition } from '@medplum/fhirtypes';
import type { FhirClient } from '@kc/fhir';
import { ProtocolCatalog } from '@kc/protocols';
import { PlanDefinitions } from './plan-definitions';

const catalog = ProtocolCatalog.fromDirectory(join(__dirname, '../../../fhir-profiles'));
const EHR_URL = 'http://ehr.example/PlanDefinition/series';

const ehrPlan = (version: string): PlanDefinition => ({
  resourceType: 'PlanDefinition',
  id: `series-${version}`,
  url: EHR_URL,
  version,
  status: 'active',
  title: `Series v${version}`,
  action: [{ id: 'call', title: 'Call the patient' }],
});

const carePlanOf = (canonical: string): CarePlan => ({
  resourceType: 'CarePlan',
  status: 'active',
  intent: 'plan',
  subject: { reference: 'Patient/p1' },
  instantiatesCanonical: [canonical],
});

/** A FHIR server holding `stored` PlanDefinitions, answering `url` as the embedded store does (a substring), counted. */
function serverWith(stored: PlanDefinition[]) {
  const searches: Record<string, string>[] = [];
  let failing = false;
  const fhir = {
    searchAll: (_type: string, params: Record<string, string>) => {
      searches.push(params);
      if (failing) return Promise.reject(new Error('server down'));
      return Promise.resolve(
        stored.filter((p) => p.url?.includes(params.url) && (!params.version || p.version === params.version)),
      );
    },
  } as unknown as FhirClient;
  return { fhir, searches, fail: (on: boolean) => (failing = on) };
}

describe('PlanDefinitions', () => {
  afterEach(() => jest.useRealTimers());

  it('finds the catalog’s protocols without asking the FHIR server', async () => {
    const server = serverWith([]);
    const plans = new PlanDefinitions(catalog, server.fhir);
    const found = await plans.ofCarePlan(
      carePlanOf('https://ketamine-careplans.example/fhir/PlanDefinition/ketamine-low-dose-series|1.0.0'),
    );
    expect(found?.plan.id).toBe('ketamine-low-dose-series');
    expect(server.searches).toEqual([]);
  });

  it('reads an EHR’s protocol once for many plans, and again once 30 s have passed', async () => {
    jest.useFakeTimers({ now: new Date('2027-01-01T09:00:00Z') });
    const server = serverWith([ehrPlan('1'), { ...ehrPlan('1'), id: 'other', url: `${EHR_URL}-v2` }]);
    const plans = new PlanDefinitions(catalog, server.fhir);
    for (let i = 0; i < 5; i++) expect((await plans.ofCarePlan(carePlanOf(`${EHR_URL}|1`)))?.plan.id).toBe('series-1');
    expect(server.searches).toHaveLength(1);
    jest.setSystemTime(new Date('2027-01-01T09:00:31Z'));
    await plans.ofCarePlan(carePlanOf(`${EHR_URL}|1`));
    expect(server.searches).toHaveLength(2);
  });

  it('a version gone: the latest of its url to check the patient, nothing to plan follow-ups from', async () => {
    const server = serverWith([ehrPlan('9'), ehrPlan('10'), ehrPlan('2')]);
    const plans = new PlanDefinitions(catalog, server.fhir);
    // Versions in their numeric order: 10 after 9.
    expect((await plans.ofCarePlan(carePlanOf(`${EHR_URL}|1`)))?.plan.version).toBe('10');
    expect(await plans.ofCarePlan(carePlanOf(`${EHR_URL}|1`), { latestIfGone: false })).toBeUndefined();
    expect(await plans.ofCarePlan(carePlanOf('http://ehr.example/PlanDefinition/nowhere|1'))).toBeUndefined();
  });

  it('a failed read is not kept: the next check reads again', async () => {
    const server = serverWith([ehrPlan('1')]);
    const plans = new PlanDefinitions(catalog, server.fhir);
    server.fail(true);
    await expect(plans.ofCarePlan(carePlanOf(`${EHR_URL}|1`))).rejects.toThrow('server down');
    server.fail(false);
    expect((await plans.ofCarePlan(carePlanOf(`${EHR_URL}|1`)))?.plan.id).toBe('series-1');
  });

  it('"not found" is kept too, until the definition is stored here (an inline PlanDefinition kept on the server)', async () => {
    const stored: PlanDefinition[] = [];
    const server = serverWith(stored);
    const plans = new PlanDefinitions(catalog, server.fhir);
    expect(await plans.ofCarePlan(carePlanOf(`${EHR_URL}|1`))).toBeUndefined();
    stored.push(ehrPlan('1'));
    expect(await plans.ofCarePlan(carePlanOf(`${EHR_URL}|1`))).toBeUndefined();
    plans.forget(`${EHR_URL}|1`);
    expect((await plans.ofCarePlan(carePlanOf(`${EHR_URL}|1`)))?.plan.id).toBe('series-1');
  });
});
