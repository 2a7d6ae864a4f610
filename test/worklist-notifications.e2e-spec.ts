import request from 'supertest';
import type {
  CarePlan,
  CommunicationRequest,
  DetectedIssue,
  MedicationRequest,
  Provenance,
  Task,
} from '@medplum/fhirtypes';
import { DELETED_TASK_REASON, isReminderAbout } from '@kc/followups';
import { recheckContraindicationsJobId, taskDeletedJobId, withdrawStoppedPlanJobId } from '@kc/queue';
import { orderKeySearch, THIS_SERVICE } from '@kc/task-states';
import { AnsweredOrdersSweep } from '../apps/worker/src/maintenance/answered-orders-sweep';
import { activeCondition, bloodPressure, PREGNANCY } from './fixtures/patient-data';
import {
  actionOf,
  enrolPatient,
  maintenanceJobDone,
  overrideIssue,
  postDeletion,
  postWebhook,
  waitFor,
  worklistIdsOf,
} from './support/clinic';
import { approvedSessionOrder } from './support/checks';
import { startTestService, type TestService } from './support/test-service';

/**
 * The worklist is a read model the service keeps on its own writes (docs/worklist.md). A Task someone else writes
 * (an EHR, straight to the FHIR server) reached it only at the next reconciliation; a Subscription notification
 * (Medplum's POST with the resource, HAPI's PUT {endpoint}/Task/{id}) brings it now.
 */
describe('Tasks written by others reach the worklist by Subscription notification', () => {
  let service: TestService;
  beforeAll(async () => {
    // No reconciliation: only the notifications can bring the EHR's Tasks in.
    service = await startTestService({ worklistReconcileMs: 0 });
  }, 60_000);
  afterAll(() => service?.stop());

  it('a Task posted with its resource is listed at once; cancelled and notified by id it goes; a stale echo changes nothing', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const listed = () => worklistIdsOf(service, enrolment.patient);
    // Straight to the FHIR server, as an EHR writes it: this service does not see the write.
    const { resource: task } = await service.fhir.create<Task>({
      resourceType: 'Task',
      status: 'draft',
      intent: 'plan',
      description: 'Call the patient about transport to the next session',
      for: { reference: enrolment.patient },
      basedOn: [{ reference: `CarePlan/${enrolment.carePlanId}` }],
      restriction: { period: { start: '2027-01-10T09:00:00.000Z', end: '2027-01-12T17:00:00.000Z' } },
    });
    expect(await listed()).not.toContain(task.id);

    const notify = (body: string) => postWebhook(service, body).expect(202);
    const created = JSON.stringify(task);
    await notify(created);
    expect(await listed()).toContain(task.id);

    await service.fhir.update<Task>({ ...task, status: 'cancelled' });
    await request(service.url)
      .put(`/webhooks/fhir/Task/${task.id}`)
      .set('x-webhook-token', 'test-webhook-secret')
      .expect(202);
    expect(await listed()).not.toContain(task.id);

    // The create's notification delivered again, late: older than what the index applied, so ignored.
    await notify(created);
    expect(await listed()).not.toContain(task.id);
    // Stamped a day ahead (a skewed clock, a forged body): not taken as sent, read back (cancelled: stays off).
    const future = new Date(Date.now() + 86_400_000).toISOString();
    await notify(JSON.stringify({ ...task, meta: { ...task.meta, lastUpdated: future } }));
    expect(await listed()).not.toContain(task.id);
  });

  it('a CarePlan the EHR stopped, notified (Medplum POST or HAPI PUT): its Tasks awaiting approval are withdrawn and leave the worklist', async () => {
    const awaiting = (patient: string) => worklistIdsOf(service, patient);
    const medplum = await enrolPatient(service, 'ketamine-low-dose-series');
    const hapi = await enrolPatient(service, 'ketamine-low-dose-series');
    const paused = await enrolPatient(service, 'ketamine-low-dose-series');
    for (const p of [medplum, hapi, paused]) expect((await awaiting(p.patient)).length).toBeGreaterThan(0);
    const stop = async (carePlanId: string, status: CarePlan['status']) => {
      const carePlan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
      return service.fhir.update<CarePlan>({ ...carePlan, status });
    };

    const body = JSON.stringify(await stop(medplum.carePlanId, 'revoked'));
    await postWebhook(service, body).expect(202);
    await stop(hapi.carePlanId, 'completed');
    await request(service.url)
      .put(`/webhooks/fhir/CarePlan/${hapi.carePlanId}`)
      .set('x-webhook-token', 'test-webhook-secret')
      .expect(202);
    await stop(paused.carePlanId, 'on-hold');
    await request(service.url)
      .put(`/webhooks/fhir/CarePlan/${paused.carePlanId}`)
      .set('x-webhook-token', 'test-webhook-secret')
      .expect(202);

    for (const p of [medplum, hapi]) {
      await waitFor(async () => (await awaiting(p.patient)).length === 0, 'the stopped plan to leave the worklist');
      const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${p.carePlanId}` });
      expect(tasks.filter((t) => t.status === 'draft')).toEqual([]);
      expect(tasks.some((t) => t.businessStatus?.coding?.[0]?.code === 'withdrawn')).toBe(true);
    }
    // Paused, not stopped: its Tasks stay (approving them is refused until it resumes).
    expect((await awaiting(paused.patient)).length).toBeGreaterThan(0);
  });

  it('a CarePlan deleted in the EHR, notified: its open Tasks are withdrawn as a revoked plan’s, its approved order cancelled', async () => {
    const p = await enrolPatient(service, 'ketamine-low-dose-series');
    const [session] = (await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${p.carePlanId}` })).filter(
      (t) => actionOf(t) === 'infusion-session',
    );
    const order = await approvedSessionOrder(service, session);
    expect(order.status).toBe('active');
    expect((await fetch(`${service.config.fhirBaseUrl}/CarePlan/${p.carePlanId}`, { method: 'DELETE' })).ok).toBe(true);
    // Before, `{}` was "nothing to do": the order stayed active under a plan that is gone.
    await postDeletion(service, `CarePlan/${p.carePlanId}`).expect(202);
    await maintenanceJobDone(service, withdrawStoppedPlanJobId(p.carePlanId), 'the deleted plan’s job');
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${p.carePlanId}` });
    expect(tasks.filter((t) => t.status === 'draft' || t.status === 'ready')).toEqual([]);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('cancelled');
  });

  /** A patient's first session, approved: its order and its reminders, as written. */
  async function approvedSessionWithReminders() {
    const p = await enrolPatient(service, 'ketamine-low-dose-series');
    const [session] = (await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${p.carePlanId}` })).filter(
      (t) => actionOf(t) === 'infusion-session',
    );
    const order = await approvedSessionOrder(service, session);
    const reminders = (
      await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
        'based-on': `CarePlan/${p.carePlanId}`,
      })
    ).filter((r) => isReminderAbout(r, session.id));
    expect(order.status).toBe('active');
    expect(reminders.length).toBeGreaterThan(0);
    expect(reminders.every((r) => r.status === 'active')).toBe(true);
    return { ...p, session, order, reminders };
  }

  /** The order cancelled and the reminders revoked for the deleted Task, with one Provenance naming the service. */
  async function expectWithdrawn(p: Awaited<ReturnType<typeof approvedSessionWithReminders>>) {
    const order = await service.fhir.read<MedicationRequest>('MedicationRequest', p.order.id!);
    expect(order).toMatchObject({ status: 'cancelled', statusReason: { text: DELETED_TASK_REASON } });
    for (const r of p.reminders)
      expect((await service.fhir.read<CommunicationRequest>('CommunicationRequest', r.id!)).status).toBe('revoked');
    // Besides the approval's: one withdrawal, by the service.
    const [provenance, ...more] = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `MedicationRequest/${p.order.id}` })
    ).filter((r) => r.activity?.text === 'withdraw');
    expect(more).toEqual([]);
    expect(provenance).toMatchObject({
      agent: [{ who: THIS_SERVICE }],
      activity: { text: 'withdraw' },
      entity: [{ role: 'revision', what: { reference: `Task/${p.session.id}/_history/${p.session.meta!.versionId}` } }],
    });
    expect(await worklistIdsOf(service, p.patient)).not.toContain(p.session.id);
  }

  it('an approved Task deleted in the EHR, notified: its order to give is cancelled and its reminders revoked', async () => {
    const p = await approvedSessionWithReminders();
    // The Task as approved (its last version before the deletion).
    p.session = await service.fhir.read<Task>('Task', p.session.id!);
    expect((await fetch(`${service.config.fhirBaseUrl}/Task/${p.session.id}`, { method: 'DELETE' })).ok).toBe(true);
    // Before, the Task only left the lists: its order stayed active, answering no Task, beyond any hold or sweep.
    await postDeletion(service, `Task/${p.session.id}`).expect(202);
    await maintenanceJobDone(service, taskDeletedJobId(p.session.id!), 'the deleted Task’s job');
    await expectWithdrawn(p);
  });

  it('an approved Task deleted in the EHR, its notification missed: the sweep withdraws its order and reminders', async () => {
    const p = await approvedSessionWithReminders();
    p.session = await service.fhir.read<Task>('Task', p.session.id!);
    expect((await fetch(`${service.config.fhirBaseUrl}/Task/${p.session.id}`, { method: 'DELETE' })).ok).toBe(true);
    const { withdrawn } = await service.app.get(AnsweredOrdersSweep).sweep();
    expect(withdrawn).toBe(1);
    await expectWithdrawn(p);
    // Once: the next run finds nothing left to withdraw.
    expect((await service.app.get(AnsweredOrdersSweep).sweep()).withdrawn).toBe(0);
  });

  /** A patient's first session, approved; its order now; the plan's status changed and notified, its job done. */
  async function pausableSession() {
    const p = await enrolPatient(service, 'ketamine-low-dose-series');
    const [session] = (await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${p.carePlanId}` })).filter(
      (t) => actionOf(t) === 'infusion-session',
    );
    await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: session.meta!.versionId })
      .expect(200);
    const order = async () =>
      (
        await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
          identifier: orderKeySearch(session.id!),
        })
      )[0];
    const planBecomes = async (status: CarePlan['status']) => {
      const carePlan = await service.fhir.read<CarePlan>('CarePlan', p.carePlanId);
      await service.fhir.update<CarePlan>({ ...carePlan, status });
      await request(service.url)
        .put(`/webhooks/fhir/CarePlan/${p.carePlanId}`)
        .set('x-webhook-token', 'test-webhook-secret')
        .expect(202);
      await maintenanceJobDone(service, withdrawStoppedPlanJobId(p.carePlanId), "the plan's job");
    };
    return { ...p, session, order, planBecomes };
  }

  it("a plan the EHR paused, notified: its approved session's order is held until the plan resumes", async () => {
    const { patient, session, order, planBecomes } = await pausableSession();
    expect((await order()).status).toBe('active');
    const byService = async (activity: string) =>
      (
        await service.fhir.searchAll<Provenance>('Provenance', { target: `MedicationRequest/${(await order()).id}` })
      ).filter((r) => r.activity?.text === activity && r.agent[0].who?.display === 'ketamine-careplans (automatic)');

    await planBecomes('on-hold');
    // An EHR, a pharmacy or a pump reading the order's status does not give it while the plan is paused.
    expect(await order()).toMatchObject({
      status: 'on-hold',
      statusReason: {
        coding: [expect.objectContaining({ code: 'held-plan-paused' })],
        text: 'Held: its care plan is on hold. It is released when the plan resumes.',
      },
    });
    expect(await byService('hold')).toHaveLength(1);
    // The session stays on the to-do list, saying why it cannot be given now.
    const toDo = await request(service.url)
      .get('/to-do/view')
      .query({ patient })
      .set(service.as('clinician'))
      .expect(200);
    const row = (toDo.body.items as { id: string; view: { blocked?: string } }[]).find((i) => i.id === session.id);
    expect(row?.view.blocked).toBe('its care plan is on hold');

    await planBecomes('active');
    const released = await order();
    expect(released.status).toBe('active');
    expect(released.statusReason).toBeUndefined();
    expect(await byService('release')).toHaveLength(1);
    // The same notification again changes nothing.
    const version = released.meta!.versionId;
    await planBecomes('active');
    expect((await order()).meta!.versionId).toBe(version);
  });

  it('a pregnancy recorded while the plan was paused keeps its orders held when it resumes; the override releases them', async () => {
    const { patient, carePlanId, order, planBecomes } = await pausableSession();
    await planBecomes('on-hold');
    expect((await order()).status).toBe('on-hold');
    // Recorded during the pause (nothing checks a paused plan), then the plan resumes: checked first, still held.
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], patient));
    await planBecomes('active');
    expect((await order()).status).toBe('on-hold');
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlanId}`,
    });
    expect(issue.code?.coding?.[0].code).toBe('pregnancy');
    // The clinician overrides it: the resolved issue's job (its plans' changes) releases the orders at once, not at
    // the next sweep.
    await overrideIssue(service, issue, 'Test negative today').expect(200);
    await maintenanceJobDone(service, recheckContraindicationsJobId(`DetectedIssue/${issue.id}`), "the issue's job");
    expect((await order()).status).toBe('active');
  });

  it('a Condition or a blood pressure notified for a patient with Tasks awaiting approval: the contraindication is recorded on the plan at once', async () => {
    const medplum = await enrolPatient(service, 'ketamine-low-dose-series');
    const hapi = await enrolPatient(service, 'ketamine-low-dose-series');
    const issuesOn = (carePlanId: string) =>
      service.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${carePlanId}` });
    expect(await issuesOn(medplum.carePlanId)).toEqual([]);

    // Medplum: the Condition in the POST body.
    const { resource: pregnancy } = await service.fhir.create(
      activeCondition(PREGNANCY[0], PREGNANCY[1], medplum.patient),
    );
    const body = JSON.stringify(pregnancy);
    const answer = await postWebhook(service, body).expect(202);
    expect(answer.body.issue[0].details.text).toMatch(/1 Condition\(s\)/);
    const [issue] = await waitFor(async () => {
      const found = await issuesOn(medplum.carePlanId);
      return found.length > 0 && found;
    }, 'the contraindication recorded on the plan');
    expect(issue.code?.coding?.[0].code).toBe('pregnancy');
    expect(issue.evidence?.[0].detail).toEqual([{ reference: `Condition/${pregnancy.id}` }]);

    // HAPI: PUT {endpoint}/Observation/{id}, no body; the worker reads the Observation for its patient.
    const { resource: pressure } = await service.fhir.create(
      bloodPressure(195, 115, '2026-12-20T09:00:00Z', hapi.patient),
    );
    await request(service.url)
      .put(`/webhooks/fhir/Observation/${pressure.id}`)
      .set('x-webhook-token', 'test-webhook-secret')
      .expect(202);
    const [high] = await waitFor(async () => {
      const found = await issuesOn(hapi.carePlanId);
      return found.length > 0 && found;
    }, 'the high blood pressure recorded on the plan');
    expect(high.code?.coding?.[0].code).toBe('uncontrolled-hypertension');
  });
});
