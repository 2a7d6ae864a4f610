import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { Queue } from 'bullmq';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { QUEUES, redisConnection } from '@kc/queue';
import { startWorker as startStandaloneWorker, type RunningWorker } from '../service/start-service';
import { completeInfusion, enrolPatient, followUpTasks, waitFor } from './support/clinic';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy';
import { startTestService, type TestService } from './support/test-service';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The worker as service/worker-main.ts runs it: a Nest application context, no HTTP, its own process's modules. */
describe('standalone worker (startWorker) beside an API that runs no worker', () => {
  let sandbox: FhirSandbox;
  let proxy: FlakyProxy;
  let api: TestService;
  let queue: Queue;
  const queuePrefix = `kc-test-${randomUUID().slice(0, 8)}`;

  const startWorker = (): Promise<RunningWorker> =>
    startStandaloneWorker({ ...api.config, fhirBaseUrl: proxy.baseUrl, runWorker: true }, { logger: false });

  beforeAll(async () => {
    sandbox = await startFhirSandbox();
    proxy = await startFlakyProxy(sandbox.baseUrl);
    api = await startTestService({ fhirBaseUrl: sandbox.baseUrl, queuePrefix, runWorker: false });
    queue = new Queue(QUEUES.followups, { connection: redisConnection(REDIS_URL), prefix: queuePrefix });
  });
  afterAll(async () => {
    await queue.close();
    await api.stop();
    await proxy.close();
    await sandbox.close();
  });

  const sendEvent = (procedureId: string) =>
    request(api.url)
      .post('/events/infusion-completed')
      .set(api.as('integration'))
      .send({ procedure: `Procedure/${procedureId}` })
      .expect(202);

  it('processes the events the API queued', async () => {
    const worker = await startWorker();
    try {
      const enrolment = await enrolPatient(api, 'ketamine-low-dose-series');
      const procedureId = await completeInfusion(api, enrolment, '2027-04-01T10:00:00.000Z');
      await sendEvent(procedureId);
      await waitFor(
        async () => (await followUpTasks(api, procedureId)).length === 2,
        'follow-ups from the standalone worker',
      );
    } finally {
      await worker.stop();
    }
  });

  it('graceful shutdown: close() waits for the job in progress, which completes and writes its tasks once', async () => {
    const worker = await startWorker();
    const enrolment = await enrolPatient(api, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(api, enrolment, '2027-04-02T10:00:00.000Z');
    proxy.delayMs = 250; // a slow FHIR server: the job takes a couple of seconds
    try {
      const { body } = await sendEvent(procedureId);
      const job = await waitFor(async () => {
        const found = await queue.getJob(body.jobId);
        return found && (await found.getState()) === 'active' && found;
      }, 'the job to start');
      const closing = Date.now();
      await worker.stop(); // what SIGTERM does, via enableShutdownHooks in startWorker
      expect(Date.now() - closing).toBeGreaterThan(200);
      expect(await job.getState()).toBe('completed');
      expect((await queue.getJob(body.jobId))!.progress).toBe(100);
    } finally {
      proxy.delayMs = 0;
    }
    expect(await followUpTasks(api, procedureId)).toHaveLength(2);
  });
});
