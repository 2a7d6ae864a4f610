import request from 'supertest';
import type { Queue } from 'bullmq';
import { getQueueToken } from '@nestjs/bullmq';
import type {
  Communication,
  CommunicationRequest,
  MedicationRequest,
  Patient,
  QuestionnaireResponse,
  Task,
} from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { ReminderSweep } from '../apps/worker/src/reminders/reminder-sweep';
import {
  checkAnsweredElsewhereJobId,
  DeadLetters,
  infusionJobId,
  JOBS,
  QUEUES,
  taskChangedInEhrJobId,
  taskDeletedJobId,
  type DeadLetter,
} from '@kc/queue';
import { approvedSessionOrder, checkAnswers, infusedForCheck } from './support/checks';
import {
  completeInfusion,
  actionOf,
  enrolPatient,
  followUpTasks,
  postDeletion,
  sendInfusionEvent,
  waitFor,
} from './support/clinic';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy';
import { mailsTo, startSmtpServer } from './support/smtp-server';
import { startTestService, type TestService } from './support/test-service';

const QUESTIONNAIRE = 'https://ketamine-careplans.example/fhir/Questionnaire/post-infusion-check';
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/**
 * A FHIR server down longer than a job's retries (about 8.5 minutes with the defaults; two quick attempts here): the
 * job is kept as failed, a dead letter. The worker tries every queue's dead letters again by itself, each at its
 * time (DEAD_LETTER_REVIVAL_MS, doubled after each try that failed again), for DEAD_LETTER_REVIVAL_FOR_MS; the
 * operator's view lists them all and says when. Before session 55 the view listed only the follow-up queue's, and a
 * job that failed for good waited for an operator unless its resource changed again or a sweep of its kind found
 * it: a patient portal's answers sent during an outage never recorded the check.
 */
describe('dead letters: jobs that spent their attempts are tried again by themselves', () => {
  let sandbox: FhirSandbox;
  let proxy: FlakyProxy;
  const running: TestService[] = [];
  const start = async (overrides: Parameters<typeof startTestService>[0]) => {
    const service = await startTestService({
      fhirBaseUrl: proxy.baseUrl,
      jobAttempts: 2,
      jobBackoffMs: 50,
      checkAnswersGraceMs: 0,
      ...overrides,
    });
    running.push(service);
    return service;
  };

  beforeAll(async () => {
    sandbox = await startFhirSandbox();
    proxy = await startFlakyProxy(sandbox.baseUrl);
  });
  afterEach(() => {
    proxy.down = false;
  });
  afterAll(async () => {
    for (const service of running) await service.stop();
    await proxy.close();
    await sandbox.close();
  });

  const deadLetters = async (service: TestService): Promise<DeadLetter[]> =>
    (await request(service.url).get('/operations/dead-letters').set(service.as('admin')).expect(200)).body;

  /** Waits until the job is kept as failed (again), and returns when it failed. */
  async function failedForGood(service: TestService, queueName: string, jobId: string, after = 0): Promise<number> {
    const queue = service.app.get<Queue>(getQueueToken(queueName));
    const job = await waitFor(async () => {
      const found = await queue.getJob(jobId);
      return found && (await found.isFailed()) && (found.finishedOn ?? 0) > after && found;
    }, `job ${jobId} to fail for good`);
    return job.finishedOn!;
  }

  it("a patient portal's answers heard while the FHIR server was down record the check once it is back, with no operator", async () => {
    // The worker looks every 3 seconds here (a clinic: every 15 minutes).
    const service = await start({ deadLetterRevivalMs: 3000 });
    const p = await infusedForCheck(service);
    const { resource: answers } = await service.fhir.create<QuestionnaireResponse>({
      resourceType: 'QuestionnaireResponse',
      status: 'completed',
      questionnaire: `${QUESTIONNAIRE}|1.0.0`,
      subject: { reference: p.patient },
      authored: new Date(Date.now() - MINUTE).toISOString(),
      author: { reference: p.patient },
      item: checkAnswers(4, ['effect-dizziness']).item,
    });
    proxy.down = true;
    // HAPI's rest-hook for the answers: heard, but the FHIR server cannot be read.
    await request(service.url)
      .put(`/webhooks/fhir/QuestionnaireResponse/${answers.id}`)
      .set('x-webhook-token', 'test-webhook-secret')
      .expect(202);
    const jobId = checkAnsweredElsewhereJobId(answers.id!);
    await failedForGood(service, QUEUES.maintenance, jobId);
    // The operator's view lists it, with what it is about and when it is tried again.
    const letter = (await deadLetters(service)).find((d) => d.jobId === jobId);
    expect(letter).toMatchObject({
      queue: QUEUES.maintenance,
      name: 'check-answered-elsewhere',
      about: `QuestionnaireResponse/${answers.id}`,
      attemptsMade: 2,
      revived: 0,
    });
    expect(letter?.failedReason).toMatch(/503|unavailable/i);
    expect(Date.parse(letter!.nextRevivalAt!) - Date.parse(letter!.failedAt!)).toBe(3000);

    proxy.down = false;
    const check = await waitFor(async () => {
      const task = await service.fhir.read<Task>('Task', p.check.id!);
      return task.businessStatus?.coding?.[0].code === 'done' && task;
    }, 'the check recorded from the answers, by the revived job');
    expect(check.status).toBe('completed');
    expect(check.output?.map((o) => o.valueReference?.reference)).toContain(`QuestionnaireResponse/${answers.id}`);
    expect((await deadLetters(service)).map((d) => d.jobId)).not.toContain(jobId);
    const metrics = await request(service.url).get('/metrics').expect(200);
    expect(metrics.text).toMatch(/kc_dead_letters_revived_total\{queue="maintenance"\} [1-9]/);
  });

  it('tried again twice as late after each try that failed again, given up after its limit, and retried by an operator with all its attempts', async () => {
    // A clinic's settings: the first try 15 minutes after the failure, for a week. The test runs the worker's look at
    // chosen times.
    const service = await start({ deadLetterRevivalMs: 15 * MINUTE, deadLetterRevivalForMs: 7 * DAY });
    const revival = service.app.get(DeadLetters);
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-03-02T10:00:00.000Z');
    const jobId = infusionJobId(procedureId);
    const letterOf = async () => (await deadLetters(service)).find((d) => d.jobId === jobId)!;
    proxy.down = true;
    await sendInfusionEvent(service, procedureId);
    const firstFailure = await failedForGood(service, QUEUES.followups, jobId);
    expect(await letterOf()).toMatchObject({
      procedure: `Procedure/${procedureId}`,
      about: `Procedure/${procedureId}`,
      revived: 0,
      nextRevivalAt: new Date(firstFailure + 15 * MINUTE).toISOString(),
    });

    // Not before its time; then with all its attempts (the server still down: it fails again after both).
    expect((await revival.revive(firstFailure + 14 * MINUTE)).revived).toEqual({});
    expect((await revival.revive(firstFailure + 15 * MINUTE)).revived).toEqual({ [QUEUES.followups]: 1 });
    const secondFailure = await failedForGood(service, QUEUES.followups, jobId, firstFailure);
    expect(await letterOf()).toMatchObject({
      attemptsMade: 2,
      revived: 1,
      nextRevivalAt: new Date(secondFailure + 30 * MINUTE).toISOString(),
    });
    expect((await revival.revive(secondFailure + 29 * MINUTE)).revived).toEqual({});
    expect((await revival.revive(secondFailure + 30 * MINUTE)).revived).toEqual({ [QUEUES.followups]: 1 });
    const thirdFailure = await failedForGood(service, QUEUES.followups, jobId, secondFailure);
    expect(await letterOf()).toMatchObject({
      revived: 2,
      nextRevivalAt: new Date(thirdFailure + 60 * MINUTE).toISOString(),
    });

    // Failing all along, since its first failure (what the clinic is told of after FOLLOW_UP_FAILING_ALERT_MS).
    expect(await revival.failing(QUEUES.followups, [JOBS.infusionCompleted])).toEqual([
      { about: `Procedure/${procedureId}`, failingSince: firstFailure },
    ]);
    // A week after its first failure: left to an operator, said once; no longer told to the clinic as failing.
    expect((await revival.revive(firstFailure + 7 * DAY + MINUTE)).givenUp).toEqual({ [QUEUES.followups]: 1 });
    expect(await revival.failing(QUEUES.followups, [JOBS.infusionCompleted])).toEqual([]);
    expect(await revival.revive(firstFailure + 7 * DAY + 2 * MINUTE)).toEqual({ revived: {}, waiting: 0, givenUp: {} });
    const given = await letterOf();
    expect(given).toMatchObject({ givenUp: true, revived: 2 });
    expect(given.nextRevivalAt).toBeUndefined();

    // The operator's retry, the server still down: all its attempts again (BullMQ's plain retry gave one more).
    await request(service.url).post(`/operations/dead-letters/${jobId}/$retry`).set(service.as('admin')).expect(202);
    const fourthFailure = await failedForGood(service, QUEUES.followups, jobId, thirdFailure);
    expect((await letterOf()).attemptsMade).toBe(2);
    // The same infusion notified again revives it too, with all its attempts.
    await sendInfusionEvent(service, procedureId);
    await failedForGood(service, QUEUES.followups, jobId, fourthFailure);
    expect((await letterOf()).attemptsMade).toBe(2);
    // Once the cause is fixed: the follow-ups.
    proxy.down = false;
    await request(service.url).post(`/operations/dead-letters/${jobId}/$retry`).set(service.as('admin')).expect(202);
    await waitFor(async () => (await followUpTasks(service, procedureId)).length === 2, 'the follow-ups');
    await request(service.url).post(`/operations/dead-letters/${jobId}/$retry`).set(service.as('admin')).expect(409);
    await request(service.url).post('/operations/dead-letters/no-such-job/$retry').set(service.as('admin')).expect(404);
  });

  it("a Task's deletion notified while the FHIR server is down has its job queued, and its order withdrawn once the server is back", async () => {
    const service = await start({ deadLetterRevivalMs: 1000 });
    const p = await infusedForCheck(service);
    const order = await approvedSessionOrder(service, p.session);
    // The EHR deletes the approved session on its server; the service cannot read that server just now.
    expect((await fetch(`${sandbox.baseUrl}/Task/${p.session.id}`, { method: 'DELETE' })).ok).toBe(true);
    proxy.down = true;
    // 503: the lists cannot read the Task back, the server sends it again. Its job is queued all the same (before, it
    // was queued after the lists' read: not at all, and a notifier that gave up left the withdrawal to the sweep).
    await postDeletion(service, `Task/${p.session.id}`).expect(503);
    await failedForGood(service, QUEUES.maintenance, taskDeletedJobId(p.session.id!));
    proxy.down = false;
    const withdrawn = await waitFor(async () => {
      const now = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
      return now.status === 'cancelled' && now;
    }, 'the order withdrawn by the revived job');
    expect(withdrawn.statusReason?.text).toMatch(/deleted/i);
    // Off the to-do list too, by that job (the notification could not read it back), with no notification again.
    const toDo = await request(service.url)
      .get('/to-do')
      .query({ patient: p.patient })
      .set(service.as('clinician'))
      .expect(200);
    expect((toDo.body.items as { id: string }[]).map((i) => i.id)).not.toContain(p.session.id);
  });

  it('a Task the EHR closed, notified by id alone (HAPI) while the FHIR server is down, has its jobs queued, and its order closed once the server is back', async () => {
    const service = await start({ deadLetterRevivalMs: 1000 });
    const p = await infusedForCheck(service);
    const order = await approvedSessionOrder(service, p.session);
    // The EHR cancels the approved session by its status alone, on its server.
    const ehr = new FhirClient({ baseUrl: sandbox.baseUrl, maxAttempts: 1 });
    const approved = await ehr.read<Task>('Task', p.session.id!);
    await ehr.update<Task>({ ...approved, status: 'cancelled' });
    proxy.down = true;
    // HAPI's rest-hook without a payload: the Task is read back for the lists, so 503 (sent again), but its jobs are
    // queued first (before, none).
    await request(service.url)
      .put(`/webhooks/fhir/Task/${p.session.id}`)
      .set('x-webhook-token', 'test-webhook-secret')
      .expect(503);
    await failedForGood(service, QUEUES.maintenance, taskChangedInEhrJobId(p.session.id!));
    proxy.down = false;
    await waitFor(async () => {
      const now = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
      return now.status === 'cancelled' || undefined;
    }, 'the order closed as the EHR closed its session, by the revived job');
  });

  it('a reminder emailed whose record the FHIR server refuses is emailed once, through its retries and its revival', async () => {
    const smtp = await startSmtpServer();
    try {
      const service = await start({
        smtp: { url: smtp.url, from: 'Clinic <clinic@example.test>' },
        reminderHorizonMs: 800 * DAY,
        deadLetterRevivalMs: 15 * MINUTE,
      });
      const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
      const patient = await service.fhir.read<Patient>('Patient', enrolment.patient.split('/')[1]);
      await service.fhir.update<Patient>({ ...patient, telecom: [{ system: 'email', value: 'rita@example.test' }] });
      const [session] = (
        await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` })
      ).filter((t) => actionOf(t) === 'infusion-session');
      await request(service.url)
        .post(`/tasks/${session.id}/$approve`)
        .set(service.as('clinician'))
        .send({ versionId: session.meta!.versionId })
        .expect(200);
      const mine = (
        await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', { subject: enrolment.patient })
      ).filter((r) => r.about?.some((a) => a.reference === `Task/${session.id}`));
      expect(mine.length).toBeGreaterThan(0);
      // The FHIR server refuses the record of a reminder sent (its Communication), every time: after the email.
      proxy.intercept = (method, _path, body) =>
        method === 'POST' && body.includes('"resourceType":"Communication"')
          ? { status: 422, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] } }
          : undefined;
      const reminders = service.app.get<Queue>(getQueueToken(QUEUES.reminders));
      const failed = async () =>
        (await reminders.getFailed()).filter((j) => mine.some((r) => r.id === j.data.communicationRequestId));
      const timePasses = async (what: string) => {
        for (const job of await reminders.getDelayed()) await job.promote();
        await waitFor(async () => (await failed()).length === mine.length, what, 15_000);
      };
      await service.app.get(ReminderSweep).sweep();
      await timePasses('every reminder failed for good');
      // Each emailed once, though each job tried twice (before: once an attempt).
      expect(mailsTo(smtp, 'rita@example.test')).toHaveLength(mine.length);
      // Tried again by the worker, still refused: no more email.
      const failedAt = Math.max(...(await failed()).map((j) => j.finishedOn!));
      await service.app.get(DeadLetters).revive(failedAt + 15 * MINUTE);
      await waitFor(
        async () => (await failed()).every((j) => (j.finishedOn ?? 0) > failedAt),
        'the revived reminders to fail again',
        15_000,
      );
      expect(mailsTo(smtp, 'rita@example.test')).toHaveLength(mine.length);
      // The server takes the record again: recorded, still not emailed twice.
      proxy.intercept = () => undefined;
      const again = Math.max(...(await failed()).map((j) => j.finishedOn!));
      await service.app.get(DeadLetters).revive(again + 30 * MINUTE);
      await waitFor(
        async () =>
          (await service.fhir.searchAll<Communication>('Communication', { subject: enrolment.patient })).length ===
          mine.length,
        'the reminders recorded',
      );
      expect(mailsTo(smtp, 'rita@example.test')).toHaveLength(mine.length);
    } finally {
      proxy.intercept = () => undefined;
      await smtp.stop();
    }
  });
});
