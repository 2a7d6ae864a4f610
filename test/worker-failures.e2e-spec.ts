import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { Worker, type Queue } from 'bullmq';
import { getQueueToken } from '@nestjs/bullmq';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { QUEUES, recheckContraindicationsJobId, redisConnection, withdrawStoppedPlanJobId } from '@kc/queue';
import { ProcedurePoller } from '../apps/worker/src/maintenance/procedure-poller';
import type { CarePlan, MedicationRequest, Task } from '@medplum/fhirtypes';
import { activeCondition, PREGNANCY } from './fixtures/patient-data';
import { approvedSessionOrder } from './support/checks';
import {
  actionOf,
  completeInfusion,
  enrolPatient,
  followUpJobDone,
  followUpTasks,
  maintenanceJobDone,
  postWebhook,
  queueIdle,
  waitFor,
} from './support/clinic';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy';
import { startTestService, TEST_WEBHOOK_SECRET, type TestService } from './support/test-service';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('worker failures: nothing lost, nothing duplicated', () => {
  let sandbox: FhirSandbox;
  let proxy: FlakyProxy;
  const running: TestService[] = [];
  const start = async (overrides: Parameters<typeof startTestService>[0]) => {
    const service = await startTestService(overrides);
    running.push(service);
    return service;
  };

  beforeAll(async () => {
    sandbox = await startFhirSandbox();
    proxy = await startFlakyProxy(sandbox.baseUrl);
  });
  afterEach(async () => {
    proxy.down = false;
    proxy.answerDelayMs = () => 0;
    await Promise.all(running.splice(0).map((s) => s.stop()));
  });
  afterAll(async () => {
    await proxy.close();
    await sandbox.close();
  });

  it('FHIR server down: the job retries with backoff and creates the tasks once the server is back', async () => {
    const service = await start({ fhirBaseUrl: proxy.baseUrl, jobAttempts: 10, jobBackoffMs: 100 });
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-03-01T10:00:00.000Z');
    proxy.down = true;
    await request(service.url)
      .post('/events/infusion-completed')
      .set(service.as('integration'))
      .send({ procedure: `Procedure/${procedureId}` })
      .expect(202);
    await waitFor(() => proxy.refused >= 3, 'the worker to hit the outage a few times');
    proxy.down = false;
    await waitFor(async () => (await followUpTasks(service, procedureId)).length === 2, 'tasks after recovery', 15_000);
  });

  it('FHIR server slow: a write that landed after the client timed out is retried without duplicating the tasks', async () => {
    const service = await start({ fhirBaseUrl: proxy.baseUrl, fhirTimeoutMs: 400, jobAttempts: 10, jobBackoffMs: 100 });
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-03-05T10:00:00.000Z');
    // Reads (GETs and the batch of reads) are quick; the transaction's answer arrives only after the client has
    // given up on it.
    let slowWrites = 0;
    proxy.answerDelayMs = (method, bundleType) =>
      method === 'POST' && bundleType !== 'batch' ? (slowWrites++, 1000) : 0;
    const { body } = await request(service.url)
      .post('/events/infusion-completed')
      .set(service.as('integration'))
      .send({ procedure: `Procedure/${procedureId}` })
      .expect(202);
    // The write landed on the server although the worker saw a timeout.
    await waitFor(async () => (await followUpTasks(service, procedureId)).length === 2, 'the timed-out write to land');
    await waitFor(() => slowWrites >= 2, 'the write to be retried');
    proxy.answerDelayMs = () => 0;
    const queue = service.app.get<Queue>(getQueueToken(QUEUES.followups));
    const job = await waitFor(
      async () => {
        const found = await queue.getJob(body.jobId);
        return found?.finishedOn ? found : undefined;
      },
      'the job to finish once the server is quick again',
      15_000,
    );
    expect(job.returnvalue).toMatchObject({ status: 'created', alreadyExisted: 2 });
    expect(await followUpTasks(service, procedureId)).toHaveLength(2);
    const metrics = await request(service.url).get('/metrics').expect(200);
    expect(metrics.text).toMatch(/kc_fhir_requests_total\{method="POST",type="Bundle",status="error"\} [1-9]/);
  });

  it('retries used up: the job shows in the dead-letter view and can be retried from there', async () => {
    const service = await start({ fhirBaseUrl: proxy.baseUrl, jobAttempts: 2, jobBackoffMs: 50 });
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-03-02T10:00:00.000Z');
    proxy.down = true;
    await request(service.url)
      .post('/events/infusion-completed')
      .set(service.as('integration'))
      .send({ procedure: `Procedure/${procedureId}` })
      .expect(202);
    const dead = await waitFor(
      async () => {
        const res = await request(service.url).get('/operations/dead-letters').set(service.as('admin')).expect(200);
        return res.body.find((d: { procedure: string }) => d.procedure === `Procedure/${procedureId}`);
      },
      'the dead letter',
      20_000,
    );
    expect(dead.attemptsMade).toBe(2);
    expect(dead.failedReason).toMatch(/503|unavailable|unreachable/i);
    await request(service.url).get('/operations/dead-letters').set(service.as('clinician')).expect(403);
    proxy.down = false;
    await request(service.url)
      .post(`/operations/dead-letters/${dead.jobId}/$retry`)
      .set(service.as('admin'))
      .expect(202);
    await waitFor(async () => (await followUpTasks(service, procedureId)).length === 2, 'tasks after the manual retry');
  });

  it('a worker killed mid-job: another worker takes the job over once its lock expires, and writes one set of tasks', async () => {
    const queuePrefix = `kc-test-${randomUUID().slice(0, 8)}`;
    // API only: the job must go to the worker we are about to kill.
    const api = await start({ fhirBaseUrl: sandbox.baseUrl, queuePrefix, runWorker: false });
    const enrolment = await enrolPatient(api, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(api, enrolment, '2027-03-03T10:00:00.000Z');
    let taken!: () => void;
    const jobTaken = new Promise<void>((resolve) => (taken = resolve));
    const doomed = new Worker(
      QUEUES.followups,
      () => {
        taken();
        return new Promise(() => {}); // hangs, as a process stuck or killed mid-job would
      },
      { connection: redisConnection(REDIS_URL), prefix: queuePrefix, lockDuration: 1000, stalledInterval: 1000 },
    );
    await request(api.url)
      .post('/events/infusion-completed')
      .set(api.as('integration'))
      .send({ procedure: `Procedure/${procedureId}` })
      .expect(202);
    await jobTaken;
    await doomed.close(true); // killed: no completion, no lock renewal
    const rescuer = await start({ fhirBaseUrl: sandbox.baseUrl, queuePrefix, jobLockMs: 1000 });
    await waitFor(async () => (await followUpTasks(rescuer, procedureId)).length === 2, 'the rescued job', 15_000);
    // The rescued job has finished and nothing else is queued: no second run can add Tasks after we count.
    await followUpJobDone(rescuer, procedureId);
    await queueIdle(rescuer);
    expect(await followUpTasks(rescuer, procedureId)).toHaveLength(2);
  });

  it('polling resumes from its Redis cursor after a restart: old infusions are not queued again, new ones are', async () => {
    const queuePrefix = `kc-test-${randomUUID().slice(0, 8)}`;
    const first = await start({ fhirBaseUrl: sandbox.baseUrl, queuePrefix });
    const enrolment = await enrolPatient(first, 'ketamine-low-dose-series');
    await completeInfusion(first, enrolment, '2027-03-04T10:00:00.000Z');
    expect((await first.app.get(ProcedurePoller).poll()).queued).toBeGreaterThan(0);
    expect((await first.app.get(ProcedurePoller).poll()).queued).toBe(0);
    await first.stop();
    running.splice(running.indexOf(first), 1);

    const later = await completeInfusion(first, enrolment, '2027-03-08T10:00:00.000Z');
    const restarted = await start({ fhirBaseUrl: sandbox.baseUrl, queuePrefix });
    const { queued } = await restarted.app.get(ProcedurePoller).poll();
    expect(queued).toBe(1);
    await waitFor(
      async () => (await followUpTasks(restarted, later)).length === 2,
      'follow-ups of the infusion recorded while down',
    );
  });

  /**
   * A service behind the proxy whose jobs retry at once, and a patient's first session approved: its order, active.
   */
  async function approvedSessionBehindProxy() {
    const service = await start({ fhirBaseUrl: proxy.baseUrl, jobAttempts: 5, jobBackoffMs: 100 });
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const session = (
      await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` })
    ).find((t) => actionOf(t) === 'infusion-session')!;
    return { service, enrolment, order: await approvedSessionOrder(service, session) };
  }

  it('a hold that lost a race (an order or Task changed as it wrote) is tried again by its job, not left to the sweep', async () => {
    const { service, enrolment, order } = await approvedSessionBehindProxy();
    const { resource: pregnancy } = await service.fhir.create(
      activeCondition(PREGNANCY[0], PREGNANCY[1], enrolment.patient),
    );
    // The hold's first write is refused as a concurrent change would be (412); the next goes through.
    let refused = 0;
    proxy.intercept = (method, _path, body) =>
      method === 'POST' && body.includes('hold for contraindication') && refused++ === 0
        ? { status: 412, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'conflict' }] } }
        : undefined;
    try {
      await postWebhook(service, JSON.stringify(pregnancy)).expect(202);
      await maintenanceJobDone(
        service,
        recheckContraindicationsJobId(`Condition/${pregnancy.id}`),
        'the notified pregnancy’s check',
      );
    } finally {
      proxy.intercept = () => undefined;
    }
    expect(refused).toBeGreaterThanOrEqual(2);
    // Before, the job ended with the order still active, until the next sweep (15 min).
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
  });
  it('a paused plan’s hold that lost a race is tried again by the plan’s job', async () => {
    const { service, enrolment, order } = await approvedSessionBehindProxy();
    const plan = await service.fhir.read<CarePlan>('CarePlan', enrolment.carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'on-hold' });
    let refused = 0;
    proxy.intercept = (method, _path, body) =>
      method === 'POST' && body.includes('its care plan is on hold') && refused++ === 0
        ? { status: 412, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'conflict' }] } }
        : undefined;
    try {
      await request(service.url)
        .put(`/webhooks/fhir/CarePlan/${enrolment.carePlanId}`)
        .set('x-webhook-token', TEST_WEBHOOK_SECRET)
        .expect(202);
      await maintenanceJobDone(service, withdrawStoppedPlanJobId(enrolment.carePlanId), 'the paused plan’s job');
    } finally {
      proxy.intercept = () => undefined;
    }
    expect(refused).toBeGreaterThanOrEqual(2);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
  });
});
