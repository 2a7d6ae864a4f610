import request from 'supertest';
import { getQueueToken } from '@nestjs/bullmq';
import type { Queue, Worker } from 'bullmq';
import { isReminderAbout } from '@kc/followups';
import { infusionJobId, QUEUES } from '@kc/queue';
import type { FhirClient } from '@kc/fhir';
import type {
  CarePlan,
  CommunicationRequest,
  DetectedIssue,
  MedicationRequest,
  Parameters,
  Patient,
  Procedure,
  Task,
} from '@medplum/fhirtypes';
import { ehrOrderLike } from '../fixtures/orders';
import { bloodPressure, bodyWeight } from '../fixtures/patient-data';
import { FollowUpProcessor } from '../../apps/worker/src/followups/follow-up.processor';
import { MaintenanceProcessor } from '../../apps/worker/src/maintenance/maintenance.processor';
import { BoosterOutcomesProcessor } from '../../apps/worker/src/outcomes/booster-outcomes.processor';
import { ReminderProcessor } from '../../apps/worker/src/reminders/reminder.processor';
import { AuditTrail } from '../../apps/api/src/audit/audit-trail';
import { holdFirst, type FlakyProxy } from './flaky-proxy';
import { signWebhook, type TestService } from './test-service';

/** Clinic-shaped steps for end-to-end tests: enrol a patient, record an infusion, wait for the worker. */

export async function enrolPatient(
  service: TestService,
  planId: string,
  opts: { weightKg?: number; startDate?: string } = {},
): Promise<{ patient: string; carePlanId: string }> {
  const { resource } = await service.fhir.create<Patient>({ resourceType: 'Patient', name: [{ family: 'Enrolled' }] });
  const patient = `Patient/${resource.id}`;
  await service.fhir.create(bodyWeight(opts.weightKg ?? 80, '2026-11-01T09:00:00Z', patient));
  await service.fhir.create(bloodPressure(124, 78, '2026-11-01T09:00:00Z', patient));
  const carePlan = await applyPlan(service, planId, patient, opts.startDate);
  return { patient, carePlanId: carePlan.id! };
}

/** `$apply` of a catalog protocol to a patient, persisted, as the test clinician: the CarePlan it answers with (R4). */
export async function applyPlan(
  service: TestService,
  planId: string,
  patient: string,
  startDate = '2027-01-01',
): Promise<CarePlan> {
  const res = await applyRequest(service, planId, patient, startDate).expect(200);
  return res.body as CarePlan;
}

/** The request of a persisted `$apply` of a catalog protocol to a patient, as the test clinician, for its answer. */
export function applyRequest(service: TestService, planId: string, patient: string, startDate = '2027-01-01') {
  const params: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'subject', valueReference: { reference: patient } },
      { name: 'startDate', valueDate: startDate },
      { name: 'persist', valueBoolean: true },
    ],
  };
  return request(service.url).post(`/fhir/PlanDefinition/${planId}/$apply`).set(service.as('clinician')).send(params);
}

/**
 * What a prescriber does in the EHR directly: an order of the session's drug, timed from the start of its due window
 * (ehrOrderLike), written outside this service. With the proposal it copies.
 */
export async function orderedInEhrFor(
  service: TestService,
  session: Task,
): Promise<{ proposal: MedicationRequest; ehrOrder: MedicationRequest }> {
  const proposal = await service.fhir.read<MedicationRequest>(
    'MedicationRequest',
    session.focus!.reference!.split('/')[1],
  );
  const { resource: ehrOrder } = await service.fhir.create(
    ehrOrderLike(proposal, { start: session.restriction!.period!.start }),
  );
  return { proposal, ehrOrder };
}

/** A Task approved through the API by the test clinician, on the version given: the Task as answered. */
export async function approveTask(service: TestService, task: Task): Promise<Task> {
  const approved = await request(service.url)
    .post(`/tasks/${task.id}/$approve`)
    .set(service.as('clinician'))
    .send({ versionId: task.meta!.versionId })
    .expect(200);
  return approved.body as Task;
}

/** The plan's first infusion session, approved through the API by the test clinician: the Task as answered. */
export async function approveFirstSession(service: TestService, carePlanId: string): Promise<Task> {
  const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
  const draft = tasks.find((t) => actionOf(t) === 'infusion-session')!;
  const approved = await request(service.url)
    .post(`/tasks/${draft.id}/$approve`)
    .set(service.as('clinician'))
    .send({ versionId: draft.meta!.versionId })
    .expect(200);
  return approved.body as Task;
}

export async function completeInfusion(
  service: TestService,
  enrolment: { patient: string; carePlanId: string },
  end: string,
): Promise<string> {
  const start = new Date(Date.parse(end) - 3600_000).toISOString();
  const { resource } = await service.fhir.create<Procedure>({
    resourceType: 'Procedure',
    status: 'completed',
    code: { coding: [{ system: 'http://snomed.info/sct', code: '14152002', display: 'Intravenous infusion' }] },
    subject: { reference: enrolment.patient },
    basedOn: [{ reference: `CarePlan/${enrolment.carePlanId}` }],
    performedPeriod: { start, end },
  });
  return resource.id!;
}

/**
 * A plan's contraindication (or reported effect) reviewed in the EHR itself: a mitigation recorded there, not through
 * `$override`, so nothing here is told of it but what notices, polls or sweeps. The issue as written.
 */
export async function reviewedInEhr(service: TestService, carePlanId: string, text: string): Promise<DetectedIssue> {
  const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
    implicated: `CarePlan/${carePlanId}`,
  });
  return service.fhir.update<DetectedIssue>(
    { ...issue, status: 'final', mitigation: [{ action: { text }, date: new Date().toISOString() }] },
    { ifMatch: issue.meta!.versionId },
  );
}

/**
 * A clinician overrides a contraindication or reported effect (`$override`), naming the issue's version as read (the
 * If-Match of the body). The request, to `.expect()` its status.
 */
export function overrideIssue(service: TestService, issue: DetectedIssue, reason: string): request.Test {
  return request(service.url)
    .post(`/detected-issues/${issue.id}/$override`)
    .set(service.as('clinician'))
    .send({ versionId: issue.meta!.versionId, reason });
}

/** Follow-up Tasks the worker generated for an infusion (reasonReference = the Procedure), on its CarePlan. */
export async function followUpTasks(service: TestService, procedureId: string): Promise<Task[]> {
  const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
  // Every plan it names: an EHR may name its own before the service's.
  const carePlans = (procedure.basedOn ?? []).map((b) => b.reference).filter((r) => r?.startsWith('CarePlan/'));
  if (!carePlans.length) return [];
  const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': carePlans.join(',') });
  return tasks.filter((t) => t.reasonReference?.reference === `Procedure/${procedureId}`);
}

/** Reports a recorded score through the API, as an EHR would, and waits until the outcome jobs have run. */
export async function reportScore(service: TestService, observationId: string): Promise<void> {
  await request(service.url)
    .post('/events/score-recorded')
    .set(service.as('integration'))
    .send({ observation: `Observation/${observationId}` })
    .expect(202);
  await queueIdle(service, QUEUES.outcomes);
}

/** Reports a completed infusion through the API, as an EHR would, and waits until its follow-up job has finished. */
export async function reportInfusion(service: TestService, procedureId: string): Promise<unknown> {
  await sendInfusionEvent(service, procedureId);
  return followUpJobDone(service, procedureId);
}

/** Sends the infusion-completed event, as an EHR does (202: queued); its job runs after. */
export async function sendInfusionEvent(service: TestService, procedureId: string): Promise<void> {
  await request(service.url)
    .post('/events/infusion-completed')
    .set(service.as('integration'))
    .send({ procedure: `Procedure/${procedureId}` })
    .expect(202);
}

/**
 * Reports a completed infusion, sending it again while the API answers 503 (Redis failing over, as an EHR retries),
 * and waits until its follow-up job has finished.
 */
export async function reportInfusionThroughFailover(service: TestService, procedureId: string): Promise<unknown> {
  await waitFor(
    async () =>
      (
        await request(service.url)
          .post('/events/infusion-completed')
          .set(service.as('integration'))
          .send({ procedure: `Procedure/${procedureId}` })
      ).status === 202,
    'the event to be accepted',
    30_000,
  );
  return followUpJobDone(service, procedureId, 30_000);
}

/**
 * Waits until every BullMQ worker and queue of the service is connected again (clients and blocking clients `ready`), as a
 * test must before it stops a service after a failover: BullMQ's close waits on a client still reconnecting
 * (taskforcesh/bullmq#4656), and a worker idle through the failover can be in a reconnect backoff of up to 20 s
 * (BullMQ's default retry strategy), longer than a test's hook waits.
 */
export async function everyWorkerConnected(service: TestService): Promise<void> {
  const workers: Worker[] = [FollowUpProcessor, ReminderProcessor, MaintenanceProcessor, BoosterOutcomesProcessor].map(
    (processor) => service.app.get(processor).worker,
  );
  const status = async (worker: Worker) => {
    // The blocking connection is BullMQ's own (protected): read for its status only.
    const blocking = (worker as unknown as { blockingConnection: { client: Promise<{ status: string }> } })
      .blockingConnection;
    return [(await worker.client).status, (await blocking.client).status];
  };
  const queues = Object.values(QUEUES).map((name) => service.app.get<Queue>(getQueueToken(name)));
  await waitFor(
    async () => {
      try {
        return [
          ...(await Promise.all(workers.map(status))).flat(),
          ...(await Promise.all(queues.map((q) => q.client))).map((c) => c.status),
        ].every((s) => s === 'ready');
      } catch {
        // A client still failing over may reject: not ready yet.
        return false;
      }
    },
    "every worker's and queue's Redis connections to be ready",
    45_000,
  );
}

/** Waits until the follow-up job of an infusion has finished (every write it makes is done), and returns its result. */
export async function followUpJobDone(service: TestService, procedureId: string, timeoutMs = 10_000): Promise<unknown> {
  const queue = service.app.get<Queue>(getQueueToken(QUEUES.followups));
  const job = await waitFor(
    async () => {
      // A command caught by a connection closing (a Redis failover: "Connection is closed.") is asked again.
      const found = await queue.getJob(infusionJobId(procedureId)).catch(() => undefined);
      return found?.finishedOn !== undefined && found;
    },
    `the follow-up job of Procedure/${procedureId} to finish`,
    timeoutMs,
  );
  return job.returnvalue;
}

/**
 * Waits until a queue has nothing left to do: no job waiting, delayed (a retry's backoff), prioritized or active.
 * BullMQ moves a job between these states atomically, so a count of 0 means every job added so far has finished.
 */
export async function queueIdle(service: TestService, name: string = QUEUES.followups): Promise<void> {
  const queue = service.app.get<Queue>(getQueueToken(name));
  await waitFor(async () => {
    const counts = await queue.getJobCounts('waiting', 'delayed', 'prioritized', 'waiting-children', 'active');
    return Object.values(counts).every((n) => n === 0);
  }, `the ${name} queue to be idle`);
}

/** Waits until the maintenance queue's job of this id is done (gone); a failed one fails the wait, saying why. */
export async function maintenanceJobDone(service: TestService, jobId: string, what: string): Promise<void> {
  const queue = service.app.get<Queue>(getQueueToken(QUEUES.maintenance));
  await waitFor(async () => {
    const job = await queue.getJob(jobId);
    if (job && (await job.isFailed())) throw new Error(`the job failed: ${job.failedReason}`);
    return !job;
  }, what);
}

export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The ids of a patient's Tasks on the worklist (GET /worklist?patient=, as the test clinician). */
export async function worklistIdsOf(service: TestService, patient: string): Promise<string[]> {
  const res = await request(service.url).get('/worklist').query({ patient }).set(service.as('clinician')).expect(200);
  return (res.body as { items: { id: string }[] }).items.map((i) => i.id);
}

export function actionOf(task: Task): string | undefined {
  return task.extension?.find((e) => e.url.endsWith('/protocol-action'))?.valueString;
}

/**
 * FHIR requests the service has sent so far besides its access audit records (AuditTrail writes them in the
 * background, batched across requests): what an operation itself costs, counted by `sent` (a proxy's or the
 * client's count). Waits for the audit writes in flight, so both counts hold them.
 */
export async function requestsBesidesAudit(
  service: TestService,
  sent: () => number | Promise<number>,
): Promise<number> {
  const trail = service.app.get(AuditTrail);
  await trail.settled();
  return (await sent()) - trail.requests;
}

/** Medplum's notification of a deletion: `{}`, signed, naming the resource in `X-Medplum-Deleted-Resource`. */
export function postDeletion(service: TestService, reference: string) {
  return request(service.url)
    .post('/webhooks/fhir')
    .set('content-type', 'application/fhir+json')
    .set('x-signature', signWebhook('{}'))
    .set('x-medplum-deleted-resource', reference)
    .send('{}');
}

/** A FHIR server's notification (Medplum-style: the resource in the body, signed) to `POST /webhooks/fhir`. */
export function postWebhook(service: TestService, body: string) {
  return request(service.url)
    .post('/webhooks/fhir')
    .set('content-type', 'application/fhir+json')
    .set('x-signature', signWebhook(body))
    .send(body);
}

/** When each active reminder about a Task (on its plan) is to go out, as instants in ms, soonest first. */
export async function activeReminderTimes(service: TestService, carePlanId: string, taskId: string): Promise<number[]> {
  const onPlan = await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
    'based-on': `CarePlan/${carePlanId}`,
    status: 'active',
  });
  return onPlan
    .filter((r) => isReminderAbout(r, taskId))
    .map((r) => Date.parse(r.occurrenceDateTime!))
    .sort();
}

/**
 * An infusion told through the events API while the FHIR server's proxy holds its follow-up's write back: answers once
 * that follow-up has read everything and is about to write (a change made now is one it did not read), with the
 * release that lets its write through.
 */
export async function tellInfusionHoldingItsWrite(
  service: TestService,
  proxy: FlakyProxy,
  procedureId: string,
): Promise<{ release: () => void }> {
  const write = holdFirst(
    proxy,
    (method, _path, body) =>
      method === 'POST' && body.includes('"transaction"') && body.includes(`Procedure/${procedureId}`),
  );
  await sendInfusionEvent(service, procedureId);
  await write.reached;
  return write;
}

/**
 * The patient's record merged in the EHR into a new one, as FHIR's Patient/$merge links them (`replaces` on the new
 * record, `replaced-by` on the old, made inactive; what the old one replaced stays linked), the plan left under the
 * old: the new record's reference.
 */
export async function mergedIntoNewRecord(
  service: TestService,
  patient: string,
  record: Partial<Patient> = {},
): Promise<string> {
  const { resource: kept } = await service.fhir.create<Patient>({
    resourceType: 'Patient',
    ...record,
    link: [{ other: { reference: patient }, type: 'replaces' }],
  });
  const old = await service.fhir.read<Patient>('Patient', patient.split('/')[1]);
  await service.fhir.update<Patient>({
    ...old,
    active: false,
    link: [
      ...(old.link ?? []).filter((l) => l.type !== 'replaced-by'),
      { other: { reference: `Patient/${kept.id}` }, type: 'replaced-by' },
    ],
  });
  return `Patient/${kept.id}`;
}

/** `count` Tasks of the EHR's own for a patient (draft, no plan of the service's), written in one transaction. */
export async function writeEhrTasks(fhir: FhirClient, patient: string, count: number): Promise<void> {
  await fhir.transaction(
    Array.from({ length: count }, (_, i) => ({
      resource: {
        resourceType: 'Task',
        status: 'draft',
        intent: 'plan',
        for: { reference: patient },
        description: `${i}`,
      },
      request: { method: 'POST', url: 'Task' },
    })),
  );
}
