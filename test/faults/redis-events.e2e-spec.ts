import request from 'supertest';
import type { Procedure } from '@medplum/fhirtypes';
import type { Patient, Task } from '@medplum/fhirtypes';
import { completeInfusion, enrolPatient, followUpJobDone, followUpTasks, waitFor } from '../support/clinic';
import { devSignIn } from '../support/clinician';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { startTestService, type TestService } from '../support/test-service';

const sendEvent = (service: TestService, procedureId: string) =>
  request(service.url)
    .post('/events/infusion-completed')
    .set(service.as('integration'))
    .send({ procedure: `Procedure/${procedureId}` });

/** Issue 12 item 3: an event that did nothing must not hold back the later valid one for the same Procedure. */
describe('event deduplication keys on what was done', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service?.stop());

  it('an infusion reported before it was completed still gets its follow-ups when reported again, completed', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
    await service.fhir.update<Procedure>({ ...procedure, status: 'in-progress' });
    await sendEvent(service, procedureId).expect(202);
    expect(await followUpJobDone(service, procedureId)).toMatchObject({ status: 'ignored' });
    expect(await followUpTasks(service, procedureId)).toHaveLength(0);

    // Completed now, reported again (webhook, poll or API alike): processed, not deduplicated away.
    await service.fhir.update<Procedure>({
      ...(await service.fhir.read<Procedure>('Procedure', procedureId)),
      status: 'completed',
    });
    await sendEvent(service, procedureId).expect(202);
    expect(await followUpJobDone(service, procedureId)).toMatchObject({ status: 'created' });
    expect((await followUpTasks(service, procedureId)).length).toBeGreaterThan(0);

    // Done once: the same event again changes nothing.
    const before = (await followUpTasks(service, procedureId)).map((t) => `${t.id}/${t.meta?.versionId}`).sort();
    await sendEvent(service, procedureId).expect(202);
    expect((await followUpTasks(service, procedureId)).map((t) => `${t.id}/${t.meta?.versionId}`).sort()).toEqual(
      before,
    );
  });
});

/** Issue 12 item 4: Redis down fails fast, and /health names it. */
describe('Redis down', () => {
  let redis: PrivateRedis;
  let service: TestService;
  beforeAll(async () => {
    redis = await startPrivateRedis({ appendonly: false });
    service = await startTestService({
      redisUrl: redis.url,
      // Its state (key, codes, refresh tokens) is in Redis too.
      oidc: { devIssuer: true, clientId: 'ketamine-careplans-ui', scope: 'openid', devTokenSeconds: 3600 },
    });
  });
  afterAll(async () => {
    await service?.stop();
    await redis?.close();
  });

  it('an event is answered 503 with Retry-After within about a second, health names redis; back up, 202 again', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await redis.kill();

    const started = Date.now();
    const refused = await sendEvent(service, procedureId);
    expect(refused.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(refused.headers['retry-after']).toBeDefined();
    expect((refused.body as { resourceType: string }).resourceType).toBe('OperationOutcome');

    const health = await request(service.url).get('/health');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ checks: { redis: { status: 'down' }, fhir: { status: 'up' } } });

    await redis.start();
    const accepted = await waitForStatus(() => sendEvent(service, procedureId), 202);
    expect(accepted).toBe(202);
    expect(await followUpJobDone(service, procedureId)).toMatchObject({ status: 'created' });
  });

  it('every other route that needs Redis answers 503 at once, never 500 or a hang; an approval still lands (FHIR is the record)', async () => {
    // Back from the previous test's outage: every connection (queue, worklist, request-time state) reconnected.
    await waitForStatus(() => request(service.url).get('/worklist').set(service.as('clinician')), 200);
    await waitForStatus(() => request(service.url).get('/dev-issuer/jwks'), 200);
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const [draft] = await service.fhir.searchAll<Task>('Task', {
      'based-on': `CarePlan/${enrolment.carePlanId}`,
      status: 'draft',
    });
    const { resource: unenrolled } = await service.fhir.create<Patient>({ resourceType: 'Patient' });
    const signedIn = await devSignIn(service, 'clinician');
    await redis.kill();
    try {
      const unavailable = async (call: request.Test, what: string) => {
        const started = Date.now();
        const res = await call.timeout(10_000);
        expect([what, res.status, (res.body as { resourceType?: string }).resourceType]).toEqual([
          what,
          503,
          'OperationOutcome',
        ]);
        expect(res.headers['retry-after']).toBeDefined();
        // The worklist's Redis used to queue each command for 20 reconnect attempts (the read hung for seconds).
        expect([what, Date.now() - started < 3000]).toEqual([what, true]);
      };
      await unavailable(request(service.url).get('/worklist').set(service.as('clinician')), 'worklist');
      await unavailable(
        request(service.url)
          .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
          .set(service.as('clinician'))
          .send({
            resourceType: 'Parameters',
            parameter: [
              { name: 'subject', valueString: `Patient/${unenrolled.id}` },
              { name: 'persist', valueBoolean: true },
            ],
          }),
        'persisted $apply (plan write lock)',
      );
      await unavailable(
        request(service.url).post('/dev-issuer/token').type('form').send({
          grant_type: 'refresh_token',
          refresh_token: signedIn.refresh_token,
          client_id: 'ketamine-careplans-ui',
        }),
        'dev issuer refresh',
      );
      await unavailable(request(service.url).get('/dev-issuer/jwks'), 'dev issuer JWKS');
      // The operator's view still answers (it waited for Redis to come back): queue depths absent, not stale.
      const scrapeStarted = Date.now();
      const metrics = await request(service.url).get('/metrics').timeout(10_000);
      expect(metrics.status).toBe(200);
      expect(Date.now() - scrapeStarted).toBeLessThan(3000);
      expect(metrics.text).not.toContain('kc_queue_jobs{');

      // The decision is written to the FHIR server; only the worklist index misses it until it is reconciled.
      const started = Date.now();
      const approved = await request(service.url)
        .post(`/tasks/${draft.id}/$approve`)
        .set(service.as('clinician'))
        .set('If-Match', `W/"${draft.meta!.versionId}"`)
        .send({})
        .timeout(10_000);
      expect(approved.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(3000);
      expect((await service.fhir.read<Task>('Task', draft.id!)).status).toBe('ready');
    } finally {
      await redis.start();
      // Every connection back before the service stops (BullMQ's close waits on a reconnecting client).
      await waitForStatus(() => request(service.url).get('/worklist').set(service.as('clinician')), 200);
      await waitForStatus(() => request(service.url).get('/dev-issuer/jwks'), 200);
    }
  });

  it('Redis restarted without its data: the worklist is rebuilt when it is back, not at the next reconciliation', async () => {
    await waitForStatus(() => request(service.url).get('/worklist').set(service.as('clinician')), 200);
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const drafts = (
      await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}`, status: 'draft' })
    )
      .map((t) => t.id)
      .sort();
    const listed = async () => {
      const res = await request(service.url)
        .get('/worklist')
        .query({ patient: enrolment.patient })
        .set(service.as('clinician'));
      return res.status === 200 ? (res.body as { items: { id: string }[] }).items.map((i) => i.id).sort() : [];
    };
    expect(await listed()).toEqual(drafts);
    await redis.kill();
    await redis.start(); // empty: no persistence
    // No reconciliation runs in this service (WORKLIST_RECONCILE_MS=0): only the rebuild on reconnect lists them.
    await waitFor(
      async () => JSON.stringify(await listed()) === JSON.stringify(drafts),
      "the patient's Tasks on the worklist again",
    );
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await waitForStatus(() => sendEvent(service, procedureId), 202);
    expect(await followUpJobDone(service, procedureId)).toMatchObject({ status: 'created' });
  });
});

/** Redis keeps its data (AOF) but is down while a clinician decides: the worklist catches up once it is back. */
describe('Redis down during a decision, then back', () => {
  let redis: PrivateRedis;
  let service: TestService;
  beforeAll(async () => {
    redis = await startPrivateRedis({ appendonly: true });
    service = await startTestService({ redisUrl: redis.url });
  });
  afterAll(async () => {
    await service?.stop();
    await redis?.close();
  });

  it('the approved Task leaves the worklist when Redis is back, not at the next reconciliation', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    // The patient's Tasks on the worklist; undefined while it answers 503 (its Redis client not reconnected yet).
    const listed = async () => {
      const res = await request(service.url)
        .get('/worklist')
        .query({ patient: enrolment.patient })
        .set(service.as('clinician'));
      return res.status === 200 ? (res.body as { items: { id: string }[] }).items.map((i) => i.id).sort() : undefined;
    };
    const [draft, ...others] = await service.fhir.searchAll<Task>('Task', {
      'based-on': `CarePlan/${enrolment.carePlanId}`,
      status: 'draft',
    });
    expect(await listed()).toEqual([draft, ...others].map((t) => t.id).sort());

    await redis.kill();
    try {
      await request(service.url)
        .post(`/tasks/${draft.id}/$approve`)
        .set(service.as('clinician'))
        .set('If-Match', `W/"${draft.meta!.versionId}"`)
        .send({})
        .expect(200);
      // Operators see the index lagging: the update waits to be replayed.
      const lagging = (await request(service.url).get('/metrics').timeout(10_000)).text;
      expect(lagging).toMatch(/kc_worklist_index_missed_updates [1-9]/);
    } finally {
      await redis.start();
    }
    // No reconciliation runs in this service (WORKLIST_RECONCILE_MS=0): only the replayed update can remove it.
    await waitFor(async () => {
      const ids = await listed();
      return ids && !ids.includes(draft.id!);
    }, 'the approved Task to leave the worklist');
    expect(await listed()).toEqual(others.map((t) => t.id).sort());
    expect((await request(service.url).get('/metrics')).text).toMatch(/kc_worklist_index_missed_updates 0\b/);
    // And the workers are back too (an infusion's follow-ups are written), before the service stops.
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await waitForStatus(() => sendEvent(service, procedureId), 202);
    expect(await followUpJobDone(service, procedureId)).toMatchObject({ status: 'created' });
  });
});

async function waitForStatus(send: () => PromiseLike<{ status: number }>, wanted: number): Promise<number> {
  const deadline = Date.now() + 20_000;
  let status = 0;
  while (Date.now() < deadline) {
    status = (await send()).status;
    if (status === wanted) return status;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return status;
}
