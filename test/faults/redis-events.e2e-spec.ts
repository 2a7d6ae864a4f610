import request from 'supertest';
import type { Procedure } from '@medplum/fhirtypes';
import { completeInfusion, enrolPatient, followUpJobDone, followUpTasks } from '../support/clinic';
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
    service = await startTestService({ redisUrl: redis.url });
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
