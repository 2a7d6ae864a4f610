import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { Worker, type Queue } from 'bullmq';
import { getQueueToken } from '@nestjs/bullmq';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import {
  administrationRecordedJobId,
  orderChangedJobId,
  QUEUES,
  recheckContraindicationsJobId,
  redisConnection,
  withdrawStoppedPlanJobId,
} from '@kc/queue';
import { orderTaskIdOf, stateOf } from '@kc/task-states';
import { FhirClient, updateEntry } from '@kc/fhir';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { ProcedurePoller } from '../apps/worker/src/maintenance/procedure-poller';
import type {
  CarePlan,
  DetectedIssue,
  MedicationAdministration,
  MedicationRequest,
  Provenance,
  Task,
} from '@medplum/fhirtypes';
import { administrationOf, ehrReplacementOf } from './fixtures/orders';
import { activeCondition, PREGNANCY } from './fixtures/patient-data';
import { approvedSessionOrder } from './support/checks';
import {
  actionOf,
  completeInfusion,
  enrolPatient,
  followUpJobDone,
  followUpTasks,
  maintenanceJobDone,
  orderedInEhrFor,
  overrideIssue,
  postWebhook,
  queueIdle,
  reportInfusion,
  waitFor,
} from './support/clinic';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy';
import { startTestService, TEST_WEBHOOK_SECRET, type TestService } from './support/test-service';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** When the pump gave the session, within the infusion recorded as ending 2027-01-02T10:00Z. */
const PUMP_GAVE = { start: '2027-01-02T09:05:00Z', end: '2027-01-02T09:55:00Z' };

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
    proxy.beforeForward = () => undefined;
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
   * Runs `during` with the first transaction (or the first `refused`) whose body holds `marker` refused at the proxy as
   * a concurrent change would be (412); later ones go through. Answers how many such writes were tried.
   */
  async function writesTriedRefusing(marker: string, during: () => Promise<unknown>, refused = 1): Promise<number> {
    let tried = 0;
    proxy.intercept = (method, _path, body) =>
      method === 'POST' && body.includes(marker) && tried++ < refused
        ? { status: 412, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'conflict' }] } }
        : undefined;
    try {
      await during();
    } finally {
      proxy.intercept = () => undefined;
    }
    return tried;
  }

  /** The plan paused or stopped in the EHR, its change notified (HAPI style), and the plan's job done. */
  async function planChangedInEhr(service: TestService, carePlanId: string, status: CarePlan['status']): Promise<void> {
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status });
    await request(service.url)
      .put(`/webhooks/fhir/CarePlan/${carePlanId}`)
      .set('x-webhook-token', TEST_WEBHOOK_SECRET)
      .expect(202);
    await maintenanceJobDone(service, withdrawStoppedPlanJobId(carePlanId), 'the plan’s job');
  }

  /**
   * A service behind the proxy whose jobs retry at once, and a patient's first session approved: its order, active.
   */
  async function approvedSessionBehindProxy(
    overrides: Parameters<typeof startTestService>[0] = {},
    { onEhrOrder = false }: { onEhrOrder?: boolean } = {},
  ) {
    const service = await start({ fhirBaseUrl: proxy.baseUrl, jobAttempts: 5, jobBackoffMs: 100, ...overrides });
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const session = (
      await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` })
    ).find((t) => actionOf(t) === 'infusion-session')!;
    if (!onEhrOrder) return { service, enrolment, session, order: await approvedSessionOrder(service, session) };
    // Approved on the order a prescriber wrote in the EHR for it (`onOrder`): no order written here.
    const { ehrOrder } = await orderedInEhrFor(service, session);
    await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: session.meta!.versionId, onOrder: `MedicationRequest/${ehrOrder.id}` })
      .expect(200);
    return { service, enrolment, session, order: ehrOrder };
  }

  it('a hold that lost a race (an order or Task changed as it wrote) is tried again by its job, not left to the sweep', async () => {
    const { service, enrolment, order } = await approvedSessionBehindProxy();
    const { resource: pregnancy } = await service.fhir.create(
      activeCondition(PREGNANCY[0], PREGNANCY[1], enrolment.patient),
    );
    // The hold's first write is refused as a concurrent change would be (412); the next goes through.
    const tried = await writesTriedRefusing('hold for contraindication', async () => {
      await postWebhook(service, JSON.stringify(pregnancy)).expect(202);
      await maintenanceJobDone(
        service,
        recheckContraindicationsJobId(`Condition/${pregnancy.id}`),
        'the notified pregnancy’s check',
      );
    });
    expect(tried).toBeGreaterThanOrEqual(2);
    // Before, the job ended with the order still active, until the next sweep (15 min).
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
  });
  it('an override whose release lost a race, and whose job’s first release lost one too, is released by the job’s retry', async () => {
    const { service, enrolment, order } = await approvedSessionBehindProxy();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], enrolment.patient));
    await service.app.get(ContraindicationSweep).sweep();
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${enrolment.carePlanId}`,
    });
    // The release in the request, then the one of the issue's job, refused as concurrent changes would be.
    const tried = await writesTriedRefusing(
      'release hold',
      async () => {
        await overrideIssue(service, issue, 'Test negative today').expect(200);
        await maintenanceJobDone(
          service,
          recheckContraindicationsJobId(`DetectedIssue/${issue.id}`),
          'the issue’s job',
        );
      },
      2,
    );
    expect(tried).toBeGreaterThanOrEqual(3);
    // Before, the job's lost release was skipped and the order stayed held until the next sweep (15 min).
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
  });
  it('a paused plan’s hold that lost a race is tried again by the plan’s job', async () => {
    const { service, enrolment, order } = await approvedSessionBehindProxy();
    const tried = await writesTriedRefusing('its care plan is on hold', () =>
      planChangedInEhr(service, enrolment.carePlanId, 'on-hold'),
    );
    expect(tried).toBeGreaterThanOrEqual(2);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
  });
  /**
   * A patient's approved session behind the proxy, its plan stopped in the EHR as the pump begins the session: the pump
   * records the administration after the withdrawal read the orders and before its write lands (the proxy holds the
   * write back until it is recorded). The withdrawal lands across the pump's record, as it could before the fix.
   */
  async function withdrawnAcrossThePump(
    status: MedicationAdministration['status'],
    how: 'written here' | 'on the EHR’s order' | 'replaced in the EHR' = 'written here',
  ) {
    const approved = await approvedSessionBehindProxy(
      { orderChangeGraceMs: 0 },
      { onEhrOrder: how === 'on the EHR’s order' },
    );
    const { service, enrolment, session } = approved;
    let order = approved.order;
    if (how === 'replaced in the EHR') {
      // A dose changed in the EHR: its replacement written and the order cancelled, in one transaction.
      const { entry } = await service.fhir.transaction([
        { resource: ehrReplacementOf(order), request: { method: 'POST', url: 'MedicationRequest' } },
        updateEntry({ ...order, status: 'cancelled' }, order.meta!.versionId),
      ]);
      order = entry![0].resource as MedicationRequest;
    }
    const taskId = session.id!;
    let administration: MedicationAdministration | undefined;
    proxy.beforeForward = async (method, _path, body) => {
      if (method !== 'POST' || !body.includes('Withdrawn:') || administration) return;
      // Straight to the server, as the pump's system writes.
      const recorded = await fetch(`${sandbox.baseUrl}/MedicationAdministration`, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify(administrationOf(order, status, PUMP_GAVE)),
      });
      administration = (await recorded.json()) as MedicationAdministration;
    };
    await planChangedInEhr(service, enrolment.carePlanId, 'revoked');
    proxy.beforeForward = () => undefined;
    const withdrawn = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect(withdrawn.status).toBe('cancelled');
    expect(administration?.meta?.lastUpdated?.localeCompare(withdrawn.meta!.lastUpdated!)).toBe(-1);
    return { service, enrolment, order: withdrawn, taskId, administration: administration! };
  }

  const undoneBy = async (service: TestService, taskId: string) =>
    (await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${taskId}` })).filter(
      (p) => p.activity?.text === 'undo a closing that crossed the pump',
    );

  it('a withdrawal that crossed the pump beginning the session is undone when the pump’s record is notified; its infusion then completes it', async () => {
    const { service, enrolment, order, taskId, administration } = await withdrawnAcrossThePump('in-progress');
    await postWebhook(service, JSON.stringify(administration)).expect(202);
    await maintenanceJobDone(service, administrationRecordedJobId(administration.id!), 'the administration’s job');
    // Before, the session stayed withdrawn and its order cancelled under the running pump.
    const task = await service.fhir.read<Task>('Task', taskId);
    expect([task.status, stateOf(task)]).toEqual(['ready', 'approved']);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    const [provenance, ...more] = await undoneBy(service, taskId);
    expect(more).toEqual([]);
    expect(provenance.entity?.map((e) => e.what.reference)).toContain(`MedicationAdministration/${administration.id}`);
    expect(provenance.target.map((t) => t.reference)).toEqual([`Task/${taskId}`, `MedicationRequest/${order.id}`]);
    // The infusion the pump gave it during, recorded under the stopped plan: the session done, its order completed.
    await reportInfusion(service, await completeInfusion(service, enrolment, '2027-01-02T10:00:00.000Z'));
    expect((await service.fhir.read<Task>('Task', taskId)).status).toBe('completed');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
  });

  // Before session 42 only an order written here was looked at: the EHR's order (approved on, or replacing the one
  // written here) stayed cancelled under the running pump.
  it.each([
    ['approved on the EHR’s order', 'on the EHR’s order'],
    ['whose order the EHR replaced', 'replaced in the EHR'],
  ] as const)(
    'the same for a session %s: the withdrawal that cancelled that order under the pump is undone',
    async (_, how) => {
      const { service, order, taskId, administration } = await withdrawnAcrossThePump('in-progress', how);
      await postWebhook(service, JSON.stringify(administration)).expect(202);
      await maintenanceJobDone(service, administrationRecordedJobId(administration.id!), 'the administration’s job');
      const task = await service.fhir.read<Task>('Task', taskId);
      expect([task.status, stateOf(task)]).toEqual(['ready', 'approved']);
      expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
      expect(await undoneBy(service, taskId)).toHaveLength(1);
    },
  );

  it('a withdrawal that crossed the pump, its order’s closing notified once the infusion is on record: answered by that infusion', async () => {
    const { service, enrolment, order, taskId } = await withdrawnAcrossThePump('completed');
    const infusion = await completeInfusion(service, enrolment, '2027-01-02T10:00:00.000Z');
    await postWebhook(service, JSON.stringify(order)).expect(202);
    await maintenanceJobDone(service, orderChangedJobId(order.id!), 'the closed order’s job');
    const task = await service.fhir.read<Task>('Task', taskId);
    expect([task.status, stateOf(task)]).toEqual(['completed', 'done']);
    expect(task.output?.map((o) => o.valueReference?.reference)).toContain(`Procedure/${infusion}`);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
    expect(await undoneBy(service, taskId)).toHaveLength(1);
  });

  it('its infusion recorded as the withdrawal is undone (its follow-up saw the session closed): the undo answers it with that infusion', async () => {
    const { service, enrolment, order, taskId, administration } = await withdrawnAcrossThePump('completed');
    let infusion: string | undefined;
    // The infusion lands after the undo read the plan's infusions, before its write (its own follow-up would read the
    // session closed, and answer nothing).
    proxy.beforeForward = async (method, _path, body) => {
      if (method !== 'POST' || !body.includes('undo a closing that crossed the pump') || infusion) return;
      infusion = await completeInfusion(
        { ...service, fhir: new FhirClient({ baseUrl: sandbox.baseUrl }) },
        enrolment,
        '2027-01-02T10:00:00.000Z',
      );
    };
    await postWebhook(service, JSON.stringify(administration)).expect(202);
    await maintenanceJobDone(service, administrationRecordedJobId(administration.id!), 'the administration’s job');
    proxy.beforeForward = () => undefined;
    expect(infusion).toBeDefined();
    // Before, the session stayed reopened (approved, its order active) after it was given.
    const task = await service.fhir.read<Task>('Task', taskId);
    expect([task.status, task.output?.map((o) => o.valueReference?.reference)]).toEqual([
      'completed',
      [`Procedure/${infusion}`],
    ]);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
  });

  it('the pump giving an order after it was withdrawn is not a crossing: the withdrawal stands', async () => {
    const { service, enrolment, order } = await approvedSessionBehindProxy({ orderChangeGraceMs: 0 });
    await planChangedInEhr(service, enrolment.carePlanId, 'revoked');
    const { resource: late } = await service.fhir.create(administrationOf(order, 'completed', PUMP_GAVE));
    await postWebhook(service, JSON.stringify(late)).expect(202);
    await maintenanceJobDone(service, administrationRecordedJobId(late.id!), 'the administration’s job');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('cancelled');
    expect(await undoneBy(service, orderTaskIdOf(order)!)).toEqual([]);
  });
});
