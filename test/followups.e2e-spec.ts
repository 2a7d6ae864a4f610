import request from 'supertest';
import { FollowUpProcessor } from '../apps/worker/src/followups/follow-up.processor';
import { OverdueSweep } from '../apps/worker/src/maintenance/overdue-sweep';
import { ProcedurePoller } from '../apps/worker/src/maintenance/procedure-poller';
import {
  actionOf,
  completeInfusion,
  enrolPatient,
  followUpJobDone,
  followUpTasks,
  queueIdle,
  waitFor,
  postWebhook,
} from './support/clinic';
import { startTestService, type TestService } from './support/test-service';
import type { CarePlan, MedicationRequest, Procedure, Task } from '@medplum/fhirtypes';
import { APPLY_KEY_SYSTEM } from '@kc/protocols';
import type { Queue } from 'bullmq';
import { getQueueToken } from '@nestjs/bullmq';
import { QUEUES } from '@kc/queue';

describe('follow-up engine: completed infusions become follow-up tasks', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  const sendEvent = (procedureId: string) =>
    request(service.url)
      .post('/events/infusion-completed')
      .set(service.as('integration'))
      .send({ procedure: `Procedure/${procedureId}` });

  /** An infusion recorded and reported by API; its follow-up Tasks once `count` of them are written. */
  async function reportedInfusion(enrolment: { patient: string; carePlanId: string }, end: string, count: number) {
    const procedureId = await completeInfusion(service, enrolment, end);
    await sendEvent(procedureId).expect(202);
    const tasks = await waitFor(async () => {
      const found = await followUpTasks(service, procedureId);
      return found.length === count && found;
    }, `${count} follow-up tasks of the infusion ending ${end}`);
    return { procedureId, tasks };
  }

  it('induction: a post-infusion check within 7 days and the next session 2-4 days out, awaiting approval', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const { procedureId, tasks } = await reportedInfusion(enrolment, '2027-01-04T10:00:00.000Z', 2);
    const byAction = Object.fromEntries(tasks.map((t) => [actionOf(t), t]));
    expect(byAction['post-infusion-check'].restriction?.period).toEqual({
      start: '2027-01-04T10:00:00.000Z',
      end: '2027-01-11T10:00:00.000Z',
    });
    expect(byAction['next-induction-session'].restriction?.period).toEqual({
      start: '2027-01-06T10:00:00.000Z',
      end: '2027-01-08T10:00:00.000Z',
    });
    // The next session's request carries the weight-based rate (80 kg x 0.5 mg/kg/h, from the ActivityDefinition).
    const [nextSession] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: `${APPLY_KEY_SYSTEM}|${enrolment.carePlanId}:${procedureId}:next-induction-session`,
    });
    expect(nextSession.dosageInstruction?.[0].doseAndRate?.[0].rateQuantity?.value).toBe(40);
    for (const task of tasks) {
      expect(task).toMatchObject({
        status: 'draft',
        intent: 'plan',
        for: { reference: enrolment.patient },
        basedOn: [{ reference: `CarePlan/${enrolment.carePlanId}` }],
        reasonReference: { reference: `Procedure/${procedureId}` },
      });
      expect(task.businessStatus?.coding?.[0].code).toBe('awaiting-approval');
    }
  });

  it('maintenance: after the 2nd infusion of the monthly protocol the booster is due 28-35 days later', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-monthly-maintenance');
    const first = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await sendEvent(first).expect(202);
    await waitFor(async () => (await followUpTasks(service, first)).length === 2, 'first follow-ups');
    const second = await completeInfusion(service, enrolment, '2027-01-09T10:00:00.000Z');
    await sendEvent(second).expect(202);
    const tasks = await waitFor(async () => {
      const found = await followUpTasks(service, second);
      return found.length === 2 && found;
    }, 'maintenance follow-ups');
    expect(tasks.map(actionOf).sort()).toEqual(['maintenance-booster', 'post-infusion-check']);
    expect(tasks.find((t) => actionOf(t) === 'maintenance-booster')!.restriction?.period).toEqual({
      start: '2027-02-06T10:00:00.000Z',
      end: '2027-02-13T10:00:00.000Z',
    });
    // The second infusion was the session the first one scheduled: that Task is fulfilled; the check stays open.
    // The job completes it after writing the new Tasks, so wait for the job to finish.
    await followUpJobDone(service, second);
    const fromFirst = Object.fromEntries((await followUpTasks(service, first)).map((t) => [actionOf(t), t]));
    expect(fromFirst['next-induction-session']).toMatchObject({
      status: 'completed',
      output: [{ valueReference: { reference: `Procedure/${second}` } }],
    });
    expect(fromFirst['post-infusion-check'].status).toBe('draft');
  });

  it('the same infusion by API, Medplum webhook, HAPI PUT and poll yields exactly one set of tasks', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
    const body = JSON.stringify(procedure);
    await Promise.all([
      sendEvent(procedureId).expect(202),
      sendEvent(procedureId).expect(202),
      postWebhook(service, body).expect(202),
      request(service.url)
        .put(`/webhooks/fhir/Procedure/${procedureId}`)
        .set('x-webhook-token', 'test-webhook-secret')
        .expect(202),
      service.app.get(ProcedurePoller).poll(),
    ]);
    await waitFor(async () => (await followUpTasks(service, procedureId)).length >= 2, 'follow-ups');
    // Every delivery above was queued before it answered: once the queue is idle, no duplicate job is left to run.
    await followUpJobDone(service, procedureId);
    await queueIdle(service);
    expect(await followUpTasks(service, procedureId)).toHaveLength(2);
    // Delivered again long after the first job finished: still one set (conditional creates).
    await service.app.get(ProcedurePoller).poll();
    await postWebhook(service, body).expect(202);
    await queueIdle(service);
    expect(await followUpTasks(service, procedureId)).toHaveLength(2);
  });

  it('a HAPI empty rest-hook triggers a poll that finds the new infusion', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-02-01T10:00:00.000Z');
    await request(service.url).post('/webhooks/fhir').set('x-webhook-token', 'test-webhook-secret').expect(202);
    await waitFor(async () => (await followUpTasks(service, procedureId)).length === 2, 'follow-ups from the poll');
  });

  it('rejects webhooks with a bad signature or no credentials, and ignores what is not a completed infusion', async () => {
    const body = JSON.stringify({ resourceType: 'Procedure', id: 'x', status: 'completed' });
    const bad = await request(service.url)
      .post('/webhooks/fhir')
      .set('content-type', 'application/fhir+json')
      .set('x-signature', 'deadbeef')
      .send(body)
      .expect(401);
    expect(bad.body.resourceType).toBe('OperationOutcome');
    await request(service.url).put('/webhooks/fhir/Procedure/x').expect(401);
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const { resource: planned } = await service.fhir.create<Procedure>({
      resourceType: 'Procedure',
      status: 'preparation',
      code: { text: 'infusion' },
      subject: { reference: enrolment.patient },
      basedOn: [{ reference: `CarePlan/${enrolment.carePlanId}` }],
    });
    await sendEvent(planned.id!).expect(202);
    await queueIdle(service);
    expect(await followUpTasks(service, planned.id!)).toHaveLength(0);
  });

  it('a completed procedure that is not the protocol infusion, or an infusion on a plan recorded in error, gets no follow-ups', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const { resource: visit } = await service.fhir.create<Procedure>({
      resourceType: 'Procedure',
      status: 'completed',
      code: { coding: [{ system: 'http://snomed.info/sct', code: '185389009', display: 'Follow-up visit' }] },
      subject: { reference: enrolment.patient },
      basedOn: [{ reference: `CarePlan/${enrolment.carePlanId}` }],
      performedDateTime: '2027-01-05T10:00:00.000Z',
    });
    // A plan stopped (revoked) or completed in the EHR has the check of an infusion under it (session 52).
    const revoked = await enrolPatient(service, 'ketamine-monthly-maintenance');
    const carePlan = await service.fhir.read<CarePlan>('CarePlan', revoked.carePlanId);
    await service.fhir.update({ ...carePlan, status: 'entered-in-error' });
    const onRevoked = await completeInfusion(service, revoked, '2027-01-06T10:00:00.000Z');
    const jobs = await Promise.all(
      [visit.id!, onRevoked].map(async (id) => (await sendEvent(id).expect(202)).body.jobId),
    );
    const queue = service.app.get<Queue>(getQueueToken(QUEUES.followups));
    const results = await waitFor(async () => {
      const done = await Promise.all(jobs.map((id) => queue.getJob(id)));
      return done.every((j) => j?.finishedOn) && done.map((j) => j!.returnvalue);
    }, 'both jobs to finish');
    expect(results).toEqual([
      { status: 'ignored', reason: "not an infusion of the CarePlan's protocol" },
      { status: 'ignored', reason: 'CarePlan is entered-in-error' },
    ]);
    expect(await followUpTasks(service, visit.id!)).toHaveLength(0);
    expect(await followUpTasks(service, onRevoked)).toHaveLength(0);
  });

  it('high-dose (CRPS): the next infusion answers both offers of the one before, so one booster is ever pending', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-high-dose-as-needed');
    const { procedureId: first, tasks: offered } = await reportedInfusion(enrolment, '2027-01-04T10:00:00.000Z', 3);
    expect(offered.map(actionOf).sort()).toEqual([
      'maintenance-booster',
      'next-induction-session',
      'post-infusion-check',
    ]);
    const { procedureId: second } = await reportedInfusion(enrolment, '2027-01-20T10:00:00.000Z', 3);
    // The first infusion's session and booster: one fulfilled by the second infusion, the other superseded.
    const answered = (await followUpTasks(service, first)).filter((t) => actionOf(t) !== 'post-infusion-check');
    expect(answered.map((t) => t.status).sort()).toEqual(['cancelled', 'completed']);
    const pendingBoosters = (
      await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}`, status: 'draft' })
    ).filter((t) => actionOf(t) === 'maintenance-booster');
    expect(pendingBoosters.map((t) => t.reasonReference?.reference)).toEqual([`Procedure/${second}`]);
  });

  it('an infusion processed late (after later infusions are on record) still gets the follow-ups of its place in the series', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const ends = ['2027-01-04', '2027-01-07', '2027-01-10', '2027-01-13', '2027-01-16', '2027-01-19'].map(
      (d) => `${d}T10:00:00.000Z`,
    );
    const infusions: string[] = [];
    for (const end of ends) infusions.push(await completeInfusion(service, enrolment, end));
    // Only the 5th and the 6th are reported, the 6th first.
    await sendEvent(infusions[5]).expect(202);
    await sendEvent(infusions[4]).expect(202);
    const fifth = await waitFor(async () => {
      const found = await followUpTasks(service, infusions[4]);
      return found.length === 2 && found;
    }, 'follow-ups of the 5th infusion');
    const sixth = await waitFor(async () => {
      const found = await followUpTasks(service, infusions[5]);
      return found.length === 2 && found;
    }, 'follow-ups of the 6th infusion');
    expect(fifth.map(actionOf).sort()).toEqual(['next-induction-session', 'post-infusion-check']);
    expect(sixth.map(actionOf).sort()).toEqual(['maintenance-booster', 'post-infusion-check']);
    // Whatever the order, the 5th's next session is fulfilled by the 6th; the booster stays open for review.
    await waitFor(
      async () =>
        (await followUpTasks(service, infusions[4])).find((t) => actionOf(t) === 'next-induction-session')?.status ===
        'completed',
      "the 5th's next session to be closed",
    );
    expect((await followUpTasks(service, infusions[5])).map((t) => t.status)).toEqual(['draft', 'draft']);
  });

  it('API events validate their input', async () => {
    const res = await request(service.url)
      .post('/events/infusion-completed')
      .set(service.as('integration'))
      .send({ procedure: 'Patient/1' })
      .expect(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    await request(service.url)
      .post('/events/infusion-completed')
      .set(service.as('clinician'))
      .send({ procedure: 'Procedure/1' })
      .expect(403);
  });

  it('the overdue sweep marks open tasks whose window closed, and leaves the others', async () => {
    const base: Task = {
      resourceType: 'Task',
      status: 'draft',
      intent: 'plan',
      businessStatus: {
        coding: [
          {
            system: 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans',
            code: 'awaiting-approval',
          },
        ],
      },
    };
    const { resource: late } = await service.fhir.create<Task>({
      ...base,
      restriction: { period: { start: '2020-01-01T00:00:00Z', end: '2020-01-08T00:00:00Z' } },
    });
    const { resource: onTime } = await service.fhir.create<Task>({
      ...base,
      restriction: { period: { start: '2099-01-01T00:00:00Z', end: '2099-01-08T00:00:00Z' } },
    });
    await service.app.get(OverdueSweep).sweep();
    expect((await service.fhir.read<Task>('Task', late.id!)).businessStatus?.coding?.[0].code).toBe('overdue');
    expect((await service.fhir.read<Task>('Task', late.id!)).status).toBe('draft');
    expect((await service.fhir.read<Task>('Task', onTime.id!)).businessStatus?.coding?.[0].code).toBe(
      'awaiting-approval',
    );
  });

  it('a burst of events: the worker handles the jobs that run together in batches, each infusion followed up once', async () => {
    const metricValue = (text: string, name: string) =>
      Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    const before = (await request(service.url).get('/metrics').expect(200)).text;
    const enrolments = await Promise.all(
      Array.from({ length: 16 }, () => enrolPatient(service, 'ketamine-low-dose-series')),
    );
    const procedures = await Promise.all(
      enrolments.map((e) => completeInfusion(service, e, '2027-01-04T10:00:00.000Z')),
    );
    // The events queue while the worker is paused, as a burst arriving faster than it works would.
    const worker = service.app.get(FollowUpProcessor).worker;
    await worker.pause();
    try {
      await Promise.all(procedures.map((p) => sendEvent(p).expect(202)));
    } finally {
      worker.resume();
    }
    await Promise.all(procedures.map((p) => followUpJobDone(service, p)));
    for (const procedureId of procedures) expect(await followUpTasks(service, procedureId)).toHaveLength(2);
    const after = (await request(service.url).get('/metrics').expect(200)).text;
    const batches =
      metricValue(after, 'kc_followup_batch_events_count') - metricValue(before, 'kc_followup_batch_events_count');
    const events =
      metricValue(after, 'kc_followup_batch_events_sum') - metricValue(before, 'kc_followup_batch_events_sum');
    expect(events).toBe(16);
    // Jobs that arrived while earlier batches were running shared the batches' FHIR requests.
    expect(batches).toBeLessThan(16);
  });

  it('exposes follow-up metrics for Prometheus', async () => {
    const res = await request(service.url).get('/metrics').expect(200);
    expect(res.text).toMatch(/kc_followup_jobs_total\{result="created"\} [1-9]/);
    expect(res.text).toMatch(/kc_queue_jobs\{queue="followups",state="completed"\} [1-9]/);
    expect(res.text).toMatch(/kc_queue_jobs_finished_total\{queue="followups",result="completed"\} [1-9]/);
    expect(res.text).toMatch(/kc_event_to_task_seconds_count [1-9]/);
    // Every job done: none waiting for a batch.
    expect(res.text).toMatch(/^kc_followup_batch_waiting_events 0$/m);
  });
});
