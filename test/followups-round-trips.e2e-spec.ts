import type { Task } from '@medplum/fhirtypes';
import { Registry } from 'prom-client';
import { FhirClient } from '@kc/fhir';
import { ProtocolCatalog } from '@kc/protocols';
import { FollowUpMetrics } from '../apps/worker/src/followups/follow-up.metrics';
import { FollowUpService } from '../apps/worker/src/followups/follow-up.service';
import { completeInfusion, enrolPatient, followUpTasks } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

/**
 * Issue 10: a follow-up event costs at most 3 FHIR round trips (read with _include, one batch of reads, one
 * transaction), counted at the FHIR client: every HTTP request the follow-up service sends to the FHIR server.
 */
describe('follow-ups: at most 3 FHIR requests per event', () => {
  let service: TestService;
  let requests: { method: string; url: string; body?: string }[];
  let followUps: FollowUpService;
  beforeAll(async () => {
    // No in-process worker: the test drives the follow-up service itself, through a counting FHIR client.
    service = await startTestService({ runWorker: false });
    const counting: typeof fetch = (input, init) => {
      requests.push({
        method: init?.method ?? 'GET',
        url: typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
        body: init?.body as string | undefined,
      });
      return fetch(input, init);
    };
    const fhir = new FhirClient({ baseUrl: service.config.fhirBaseUrl!, fetchImpl: counting, maxAttempts: 1 });
    followUps = new FollowUpService(fhir, service.app.get(ProtocolCatalog), new FollowUpMetrics(new Registry()));
  });
  beforeEach(() => (requests = []));
  afterAll(() => service.stop());

  const bundleType = (body?: string) => (body ? (JSON.parse(body) as { type?: string }).type : undefined);

  it('first infusion: read, batch, transaction (creates the follow-ups and fulfils the first-session Task)', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    const outcome = await followUps.handle(procedureId);
    expect(outcome).toMatchObject({ status: 'created', fulfilled: 1, alreadyExisted: 0 });
    expect(requests.length).toBeLessThanOrEqual(3);
    expect(requests.map((r) => [r.method, bundleType(r.body)])).toEqual([
      ['GET', undefined],
      ['POST', 'batch'],
      ['POST', 'transaction'],
    ]);
    expect(await followUpTasks(service, procedureId)).toHaveLength(2);
  });

  it('the transaction holds no conditional entry (Medplum runs it without SERIALIZABLE or the 8-entry limit) and locks the CarePlan by If-Match', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await followUps.handle(procedureId);
    const transaction = JSON.parse(requests[2].body!) as {
      entry: { request: { method: string; url: string; ifNoneExist?: string; ifMatch?: string } }[];
    };
    // What @medplum/fhir-router's batch preprocessing counts as needing strict isolation.
    const conditional = transaction.entry.filter(
      (e) => e.request.ifNoneExist || (['PUT', 'DELETE'].includes(e.request.method) && e.request.url.includes('?')),
    );
    expect(conditional).toEqual([]);
    expect(transaction.entry.filter((e) => e.request.method === 'POST').length).toBeGreaterThan(0);
    expect(transaction.entry).toContainEqual({
      resource: expect.anything(),
      request: { method: 'PUT', url: `CarePlan/${enrolment.carePlanId}`, ifMatch: expect.stringMatching(/^W\//) },
    });
  });

  it('two events of the same plan at once: one transaction loses the CarePlan If-Match, its retry writes nothing twice', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const first = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    const second = await completeInfusion(service, enrolment, '2027-01-07T10:00:00.000Z');
    const results = await Promise.allSettled([followUps.handle(first), followUps.handle(second)]);
    // The loser (if the two overlapped) fails like a job attempt; BullMQ would run it again.
    for (const [i, result] of results.entries())
      if (result.status === 'rejected') await followUps.handle(i === 0 ? first : second);
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    const keys = tasks.flatMap((t) => (t.identifier ?? []).map((id) => `${id.system}|${id.value}`));
    expect(keys.length).toBe(new Set(keys).size);
    expect(await followUpTasks(service, first)).toHaveLength(2);
    expect(await followUpTasks(service, second)).toHaveLength(2);
  });

  it('second and third infusions (supersede and fulfil open Tasks), and a duplicate event, each within 3', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    for (const [i, end] of [
      '2027-01-04T10:00:00.000Z',
      '2027-01-07T10:00:00.000Z',
      '2027-01-10T10:00:00.000Z',
    ].entries()) {
      const procedureId = await completeInfusion(service, enrolment, end);
      requests = [];
      const outcome = await followUps.handle(procedureId);
      expect(outcome.status).toBe('created');
      expect(requests.length).toBeLessThanOrEqual(3);
      if (i > 0) expect(outcome).toMatchObject({ fulfilled: 1 });
      requests = [];
      // The same event again: everything is found, nothing is written twice, still within 3 requests.
      const again = await followUps.handle(procedureId);
      expect(again).toMatchObject({ status: 'created', alreadyExisted: 2, fulfilled: 0 });
      expect(requests.length).toBeLessThanOrEqual(3);
    }
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    const open = tasks.filter((t) => t.status === 'draft' || t.status === 'ready');
    // Of the infusion sessions only the latest infusion's next session is still open.
    expect(open.filter((t) => t.code?.coding?.[0].code === 'infusion-session')).toHaveLength(1);
  });

  it('an event that is not a follow-up case costs one request', async () => {
    const outcome = await followUps.handle('does-not-exist');
    expect(outcome).toMatchObject({ status: 'ignored' });
    expect(requests).toHaveLength(1);
  });
});
