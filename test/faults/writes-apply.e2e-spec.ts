import request from 'supertest';
import type {
  ActivityDefinition,
  Bundle,
  CarePlan,
  Parameters,
  Patient,
  PlanDefinition,
  Task,
} from '@medplum/fhirtypes';
import type { FhirSandbox } from '@kc/fhir-sandbox';
import { startBehindProxy, type FlakyProxy, type ServiceBehindProxy } from '../support/flaky-proxy';
import { startTestService, type TestService } from '../support/test-service';

/**
 * Issue 12 items 10 and 11, for persisted $apply: a plan is written whole or reported as not written, whatever its
 * size, and concurrent calls write it once. The embedded server is Medplum's own router, so it refuses a conditional
 * transaction over 8 entries exactly as a Medplum server does; a proxy in front of it can answer for it.
 */
const STEPS = 6;
const referral = (i: number): ActivityDefinition => ({
  resourceType: 'ActivityDefinition',
  url: `http://ehr.example/ActivityDefinition/step-${i}`,
  version: '1',
  status: 'active',
  kind: 'ServiceRequest',
  code: { text: `Programme step ${i}` },
});
const bigPlan: PlanDefinition = {
  resourceType: 'PlanDefinition',
  url: 'http://ehr.example/PlanDefinition/six-steps',
  version: '1',
  status: 'active',
  title: 'Six referrals',
  action: Array.from({ length: STEPS }, (_, i) => ({
    id: `step-${i}`,
    title: `Step ${i}`,
    definitionCanonical: `http://ehr.example/ActivityDefinition/step-${i}|1`,
  })),
};

describe('persisted $apply: whole, once, any size', () => {
  let behind: ServiceBehindProxy<TestService>;
  let sandbox: FhirSandbox;
  let proxy: FlakyProxy;
  let service: TestService;

  beforeAll(async () => {
    behind = await startBehindProxy((fhirBaseUrl) => startTestService({ fhirBaseUrl }));
    ({ proxy, service, sandbox } = behind);
    for (let i = 0; i < STEPS; i++) await service.fhir.create(referral(i));
    await service.fhir.create(bigPlan);
  });
  afterEach(() => {
    proxy.intercept = () => undefined;
  });
  afterAll(() => behind?.stop());

  const patient = async () =>
    `Patient/${(await service.fhir.create<Patient>({ resourceType: 'Patient', name: [{ family: 'Big' }] })).resource.id}`;
  const apply = (subject: string, extra: Parameters['parameter'] = []) =>
    request(service.url)
      .post('/fhir/PlanDefinition/$apply')
      .set(service.as('integration'))
      .send({
        resourceType: 'Parameters',
        parameter: [
          { name: 'url', valueUri: bigPlan.url },
          { name: 'subject', valueReference: { reference: subject } },
          { name: 'startDate', valueDate: '2027-02-01' },
          ...(extra ?? []),
        ],
      });

  it('the old write shape (14 conditional creates) is refused as Medplum refuses it; the plan is written whole anyway', async () => {
    const subject = await patient();
    const preview = await apply(subject, [{ name: 'output', valueCode: 'parameters' }]).expect(200);
    const conditional = (preview.body as Parameters).parameter!.find((p) => p.name === 'transaction')!
      .resource as Bundle;
    expect(conditional.entry!.length).toBeGreaterThan(8);
    const refused = await fetch(`${sandbox.baseUrl}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify(conditional),
    });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('strict isolation');

    const res = await apply(subject, [{ name: 'persist', valueBoolean: true }]).expect(200);
    const carePlan = res.body as CarePlan;
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlan.id}` });
    expect(tasks).toHaveLength(STEPS);
    expect(await service.fhir.searchAll('ServiceRequest', { subject })).toHaveLength(STEPS);
    for (const task of tasks) await service.fhir.read('ServiceRequest', task.focus!.reference!.split('/')[1]);
  });

  it('8 concurrent persisted $apply for one patient: one plan, every resource once', async () => {
    const subject = await patient();
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => apply(subject, [{ name: 'persist', valueBoolean: true }])),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    const ids = new Set(answers.map((a) => (a.body as CarePlan).id));
    expect(ids.size).toBe(1);
    expect(await service.fhir.searchAll('CarePlan', { subject })).toHaveLength(1);
    expect(await service.fhir.searchAll('Task', { patient: subject })).toHaveLength(STEPS);
    expect(await service.fhir.searchAll('ServiceRequest', { subject })).toHaveLength(STEPS);
  });

  it('a transaction the server answers without confirming every entry is a 502, never a 200', async () => {
    const subject = await patient();
    proxy.intercept = (method, _path, body) =>
      method === 'POST' && body.includes('"type":"transaction"')
        ? {
            status: 200,
            body: {
              resourceType: 'Bundle',
              type: 'transaction-response',
              entry: [{ response: { status: '201 Created', location: 'CarePlan/x/_history/1' } }],
            },
          }
        : undefined;
    const res = await apply(subject, [{ name: 'persist', valueBoolean: true }]);
    expect(res.status).toBe(502);
    expect((res.body as { resourceType: string }).resourceType).toBe('OperationOutcome');
    // Nothing was written behind the proxy; sent again once the server behaves, the plan is written whole.
    proxy.intercept = () => undefined;
    const again = await apply(subject, [{ name: 'persist', valueBoolean: true }]).expect(200);
    expect(
      await service.fhir.searchAll('Task', { 'based-on': `CarePlan/${(again.body as CarePlan).id}` }),
    ).toHaveLength(STEPS);
  });

  it('a plan whose CarePlan does not read back after the write (a server that lost part of it) is a 502', async () => {
    const subject = await patient();
    let readBacks = 0;
    proxy.intercept = (method, _path, body) => {
      if (method !== 'POST' || !body.includes('"type":"batch"') || !/"url":"CarePlan\/[^?"]+"/.test(body))
        return undefined;
      readBacks++;
      const asked = (JSON.parse(body) as Bundle).entry!.map((e) => e.request!.url);
      return {
        status: 200,
        body: {
          resourceType: 'Bundle',
          type: 'batch-response',
          entry: asked.map((url) => {
            const [resourceType, id] = url.split('/');
            return resourceType === 'CarePlan'
              ? { response: { status: '404 Not Found' } }
              : { resource: { resourceType, id }, response: { status: '200 OK' } };
          }),
        },
      };
    };
    const res = await apply(subject, [{ name: 'persist', valueBoolean: true }]);
    expect(res.status).toBe(502);
    expect(JSON.stringify(res.body)).toContain('does not read back whole');
    expect(readBacks).toBe(2); // written again once (only what was missing), read back again, then reported
  });
});
