import { join } from 'node:path';
import type { ActivityDefinition, Bundle, BundleEntry, CarePlan, PlanDefinition, Resource } from '@medplum/fhirtypes';
import type { FhirClient } from '@kc/fhir';
import { Registry } from 'prom-client';
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

  it('lists the EHR’s protocols it has read, once each, and none of the catalog’s, for the polls to watch', async () => {
    const server = serverWith([ehrPlan('1'), ehrPlan('2')]);
    const plans = new PlanDefinitions(catalog, server.fhir);
    await plans.ofCarePlan(
      carePlanOf('https://ketamine-careplans.example/fhir/PlanDefinition/ketamine-low-dose-series|1.0.0'),
    );
    await plans.ofCarePlan(carePlanOf(`${EHR_URL}|1`));
    await plans.ofCarePlan(carePlanOf(`${EHR_URL}|2`));
    // The version gone, checked with the latest: the latest is the one kept (read under the url alone).
    await plans.ofCarePlan(carePlanOf(`${EHR_URL}|3`));
    expect(
      plans
        .seenOnServer()
        .map((p) => p.plan.version)
        .sort(),
    ).toEqual(['1', '2']);
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

  it('a version gone: the latest of its url, to check the patient and plan the follow-ups', async () => {
    const server = serverWith([ehrPlan('9'), ehrPlan('10'), ehrPlan('2')]);
    const registry = new Registry();
    const plans = new PlanDefinitions(catalog, server.fhir, registry);
    // Versions in their numeric order: 10 after 9.
    expect((await plans.ofCarePlan(carePlanOf(`${EHR_URL}|1`)))?.plan.version).toBe('10');
    expect(await plans.ofCarePlan(carePlanOf('http://ehr.example/PlanDefinition/nowhere|1'))).toBeUndefined();
    // What an operator sees: where each plan's protocol was found, and those found nowhere.
    await plans.ofCarePlan(carePlanOf(`${EHR_URL}|9`));
    await plans.ofCarePlan(
      carePlanOf('https://ketamine-careplans.example/fhir/PlanDefinition/ketamine-low-dose-series|1.0.0'),
    );
    const counted = (await registry.getSingleMetric('kc_protocol_lookups_total')!.get()).values;
    expect(Object.fromEntries(counted.map((v) => [v.labels.found, v.value]))).toEqual({
      'latest-version': 1,
      'not-found': 1,
      'fhir-server': 1,
      catalog: 1,
    });
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

  it('reads an EHR protocol’s definitions in one batch per level of nesting, each exactly by its canonical', async () => {
    const activity = (name: string, version = '1'): ActivityDefinition => ({
      resourceType: 'ActivityDefinition',
      url: `http://ehr.example/ActivityDefinition/${name}`,
      version,
      status: 'active',
      kind: 'Task',
      title: `${name} v${version}`,
    });
    const nested: PlanDefinition = {
      resourceType: 'PlanDefinition',
      url: 'http://ehr.example/PlanDefinition/aftercare',
      version: '1',
      status: 'active',
      action: [{ id: 'check', definitionCanonical: 'http://ehr.example/ActivityDefinition/check|1' }],
    };
    const stored: Resource[] = [
      activity('call'),
      activity('call', '2'),
      activity('call-v2'),
      activity('visit'),
      activity('check'),
      nested,
    ];
    const batches: string[][] = [];
    const fhir = {
      batch: (entries: BundleEntry[]) => {
        batches.push(entries.map((e) => e.request!.url));
        return Promise.resolve({
          resourceType: 'Bundle',
          type: 'batch-response',
          entry: entries.map((e) => {
            const [type, query] = e.request!.url.split('?');
            const params = new URLSearchParams(query);
            const matches = stored.filter(
              (r) =>
                r.resourceType === type &&
                (r as PlanDefinition).url!.includes(params.get('url')!) &&
                (!params.get('version') || (r as PlanDefinition).version === params.get('version')),
            );
            return {
              response: { status: '200 OK' },
              resource: { resourceType: 'Bundle', type: 'searchset', entry: matches.map((resource) => ({ resource })) },
            };
          }),
        } as Bundle);
      },
    } as unknown as FhirClient;
    const plans = new PlanDefinitions(catalog, fhir);
    const { definitions } = await plans.withDefinitions({
      ...ehrPlan('1'),
      action: [
        { id: 'call', definitionCanonical: 'http://ehr.example/ActivityDefinition/call' },
        { id: 'visit', definitionCanonical: 'http://ehr.example/ActivityDefinition/visit|1' },
        { id: 'aftercare', definitionCanonical: 'http://ehr.example/PlanDefinition/aftercare|1' },
        // The catalog's own: not asked for.
        {
          id: 'check',
          definitionCanonical: 'https://ketamine-careplans.example/fhir/ActivityDefinition/post-infusion-check|1.0.0',
        },
      ],
    });
    expect(batches).toHaveLength(2);
    expect(batches[1]).toEqual([
      'PlanDefinition?url=http%3A%2F%2Fehr.example%2FActivityDefinition%2Fcheck&version=1',
      'ActivityDefinition?url=http%3A%2F%2Fehr.example%2FActivityDefinition%2Fcheck&version=1',
    ]);
    // Exactly the url (not `call-v2`), its latest version when none is named.
    expect((definitions.resolve('http://ehr.example/ActivityDefinition/call') as ActivityDefinition).title).toBe(
      'call v2',
    );
    expect((definitions.resolve('http://ehr.example/ActivityDefinition/visit|1') as ActivityDefinition).title).toBe(
      'visit v1',
    );
    expect(definitions.resolve('http://ehr.example/ActivityDefinition/check|1')?.resourceType).toBe(
      'ActivityDefinition',
    );
    expect(definitions.resolve('http://ehr.example/PlanDefinition/aftercare|1')?.resourceType).toBe('PlanDefinition');
  });
});
