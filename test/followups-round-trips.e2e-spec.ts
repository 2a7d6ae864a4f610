import type { CarePlan, Task } from '@medplum/fhirtypes';
import { Registry } from 'prom-client';
import { FhirClient } from '@kc/fhir';
import { PlanDefinitions } from '@kc/nest-core';
import { ProtocolCatalog } from '@kc/protocols';
import { FollowUpMetrics } from '../apps/worker/src/followups/follow-up.metrics';
import { FollowUpService } from '../apps/worker/src/followups/follow-up.service';
import { completeInfusion, enrolPatient, followUpTasks } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

/**
 * Issue 10: a follow-up event costs at most 3 FHIR round trips (read with _include, one batch of reads, one
 * transaction), counted at the FHIR client: every HTTP request the follow-up service sends to the FHIR server.
 */
const bundleType = (body?: string) => (body ? (JSON.parse(body) as { type?: string }).type : undefined);

describe('follow-ups: at most 3 FHIR requests per event', () => {
  let service: TestService;
  let requests: { method: string; url: string; body?: string }[];
  let followUps: FollowUpService;
  let metrics: FollowUpMetrics;
  /** Runs once before the next transaction is sent (another writer getting there first). */
  let beforeNextTransaction: (() => Promise<unknown>) | undefined;
  /** The fetch of the FHIR clients under test: records each request. */
  let counting: typeof fetch;
  beforeAll(async () => {
    // No in-process worker: the test drives the follow-up service itself, through a counting FHIR client.
    service = await startTestService({ runWorker: false });
    counting = async (input, init) => {
      requests.push({
        method: init?.method ?? 'GET',
        url: typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
        body: init?.body as string | undefined,
      });
      const hook = beforeNextTransaction;
      if (hook && bundleType(init?.body as string | undefined) === 'transaction') {
        beforeNextTransaction = undefined;
        await hook();
      }
      return fetch(input, init);
    };
    const fhir = new FhirClient({ baseUrl: service.config.fhirBaseUrl!, fetchImpl: counting, maxAttempts: 1 });
    metrics = new FollowUpMetrics(new Registry());
    // The catalog's protocols are found with no request (an EHR's would be read from the server, then kept 30 s).
    followUps = new FollowUpService(
      fhir,
      new PlanDefinitions(service.app.get(ProtocolCatalog), fhir),
      metrics,
      service.config,
    );
  });
  beforeEach(() => (requests = []));
  afterAll(() => service.stop());

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

  it('FOLLOW_UP_OWNER=care-team: the care team is read in the same batch (still 3 requests)', async () => {
    const fhir = new FhirClient({ baseUrl: service.config.fhirBaseUrl!, fetchImpl: counting, maxAttempts: 1 });
    const byCareTeam = new FollowUpService(fhir, new PlanDefinitions(service.app.get(ProtocolCatalog), fhir), metrics, {
      ...service.config,
      followUpOwner: 'care-team',
    });
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    requests = [];
    await byCareTeam.handle(procedureId);
    expect(requests.map((r) => [r.method, bundleType(r.body)])).toEqual([
      ['GET', undefined],
      ['POST', 'batch'],
      ['POST', 'transaction'],
    ]);
    expect(requests[1].body).toContain('CareTeam?subject=');
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

  describe('events handled together (the worker batches the jobs that run at the same time)', () => {
    const keysOf = (tasks: Task[]) =>
      tasks.flatMap((t) => (t.identifier ?? []).map((id) => `${id.system}|${id.value}`));

    it('eight events of eight plans: 3 FHIR requests in all, one transaction, every event its own follow-ups', async () => {
      const enrolments = await Promise.all(
        Array.from({ length: 8 }, () => enrolPatient(service, 'ketamine-low-dose-series')),
      );
      const procedures = await Promise.all(
        enrolments.map((e) => completeInfusion(service, e, '2027-01-04T10:00:00.000Z')),
      );
      requests = [];
      const results = await followUps.handleMany(procedures.map((procedureId) => ({ procedureId })));
      expect(results.map((r) => r.status === 'fulfilled' && r.value.status)).toEqual(Array(8).fill('created'));
      expect(requests.map((r) => [r.method, bundleType(r.body)])).toEqual([
        ['GET', undefined],
        ['POST', 'batch'],
        ['POST', 'transaction'],
      ]);
      for (const [i, procedureId] of procedures.entries()) {
        const result = results[i] as PromiseFulfilledResult<{ carePlanId: string; tasks: string[] }>;
        expect(result.value.carePlanId).toBe(enrolments[i].carePlanId);
        const written = await followUpTasks(service, procedureId);
        expect(written).toHaveLength(2);
        // Each event's outcome names its own Tasks, not a neighbour's.
        expect(result.value.tasks.sort()).toEqual(written.map((t) => `Task/${t.id}`).sort());
      }
    });

    it("two events of one plan in a batch: handled one after the other, the second reads the first's Tasks", async () => {
      const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
      const other = await enrolPatient(service, 'ketamine-low-dose-series');
      const first = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
      const second = await completeInfusion(service, enrolment, '2027-01-07T10:00:00.000Z');
      const elsewhere = await completeInfusion(service, other, '2027-01-04T10:00:00.000Z');
      requests = [];
      const results = await followUps.handleMany([first, second, elsewhere].map((procedureId) => ({ procedureId })));
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
      // One round for the first event and the other plan's, then one for the second event.
      expect(requests).toHaveLength(6);
      const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
      expect(keysOf(tasks).length).toBe(new Set(keysOf(tasks)).size);
      // Of the infusion sessions only the second infusion's next one is still open.
      const openSessions = tasks.filter(
        (t) => ['draft', 'ready'].includes(t.status) && t.code?.coding?.[0].code === 'infusion-session',
      );
      expect(openSessions.map((t) => t.reasonReference?.reference)).toEqual([`Procedure/${second}`]);
      expect(await followUpTasks(service, first)).toHaveLength(2);
      expect(await followUpTasks(service, second)).toHaveLength(2);
      expect(await followUpTasks(service, elsewhere)).toHaveLength(2);
    });

    it("a batch's transaction refused (another writer changed one plan first): each event alone, none lost", async () => {
      const enrolments = await Promise.all(
        Array.from({ length: 3 }, () => enrolPatient(service, 'ketamine-low-dose-series')),
      );
      const procedures = await Promise.all(
        enrolments.map((e) => completeInfusion(service, e, '2027-01-04T10:00:00.000Z')),
      );
      const splitBefore = (await metrics.batchesSplit.get()).values[0]?.value ?? 0;
      // A clinician's edit lands on the second plan between the batch's reads and its transaction: its If-Match fails.
      beforeNextTransaction = async () => {
        const plan = await service.fhir.read<CarePlan>('CarePlan', enrolments[1].carePlanId);
        await service.fhir.update({ ...plan, description: 'edited by a clinician meanwhile' });
      };
      requests = [];
      const results = await followUps.handleMany(procedures.map((procedureId) => ({ procedureId })));
      expect(results.map((r) => r.status === 'fulfilled' && r.value.status)).toEqual(Array(3).fill('created'));
      expect((await metrics.batchesSplit.get()).values[0]?.value).toBe(splitBefore + 1);
      // The shared attempt (3 requests), then each event alone (3 each).
      expect(requests.filter((r) => bundleType(r.body) === 'transaction')).toHaveLength(4);
      for (const procedureId of procedures) expect(await followUpTasks(service, procedureId)).toHaveLength(2);
      const edited = await service.fhir.read<CarePlan>('CarePlan', enrolments[1].carePlanId);
      expect(edited.description).toBe('edited by a clinician meanwhile');
    });

    it('an event whose plan another batch of this process is writing waits for it: no lost If-Match, both land the first time', async () => {
      const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
      const first = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
      const second = await completeInfusion(service, enrolment, '2027-01-07T10:00:00.000Z');
      const results = await Promise.all([
        followUps.handleMany([{ procedureId: first }]),
        followUps.handleMany([{ procedureId: second }]),
      ]);
      expect(results.flat().map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
      const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
      expect(keysOf(tasks).length).toBe(new Set(keysOf(tasks)).size);
      expect(await followUpTasks(service, first)).toHaveLength(2);
      expect(await followUpTasks(service, second)).toHaveLength(2);
    });

    it('an ignored event in a batch is answered as ignored; the others are followed up', async () => {
      const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
      const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
      const results = await followUps.handleMany([{ procedureId: 'does-not-exist' }, { procedureId }]);
      expect(results).toEqual([
        { status: 'fulfilled', value: { status: 'ignored', reason: 'Procedure not found' } },
        { status: 'fulfilled', value: expect.objectContaining({ status: 'created' }) },
      ]);
    });
  });
});
