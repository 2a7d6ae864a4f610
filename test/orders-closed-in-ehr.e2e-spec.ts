import request from 'supertest';
import type {
  CarePlan,
  CommunicationRequest,
  DetectedIssue,
  MedicationAdministration,
  MedicationRequest,
  Procedure,
  Provenance,
  Task,
} from '@medplum/fhirtypes';
import {
  administrationRecordedJobId,
  orderChangedJobId,
  recheckContraindicationsJobId,
  taskChangedInEhrJobId,
} from '@kc/queue';
import { approvedOnOrder, orderKeySearch, stateOf } from '@kc/task-states';
import { approve } from '../apps/api/src/review/task-decisions';
import { AnsweredOrdersSweep } from '../apps/worker/src/maintenance/answered-orders-sweep';
import { AdministrationRecorded } from '../apps/worker/src/followups/administration-recorded';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { activeCondition, PREGNANCY } from './fixtures/patient-data';
import { administrationOf, ehrOrderLike, ehrReplacementOf, infusionDosage } from './fixtures/orders';
import {
  approveFirstSession,
  completeInfusion,
  enrolPatient,
  maintenanceJobDone,
  orderedInEhrFor,
  postDeletion,
  postWebhook,
  reportInfusion,
  waitFor,
} from './support/clinic';
import { carePlanReferenceOf, isCheckOfAnInfusion } from '@kc/followups';
import { updateEntry } from '@kc/fhir';
import { infusedForCheck } from './support/checks';
import { startTestService, TEST_WEBHOOK_SECRET, type TestService } from './support/test-service';
import { ClosedOrdersPoller } from '../apps/worker/src/maintenance/closed-orders-poller';
import { ClosedOrderReviews } from '../apps/worker/src/maintenance/closed-order-reviews';
import { OpenTasksReader } from '../apps/worker/src/maintenance/open-tasks';
import { PausedPlanHolds } from '../apps/worker/src/maintenance/paused-plan-holds';
import { StoppedPlanSweep } from '../apps/worker/src/maintenance/stopped-plan-sweep';
import { TasksChangedInEhrPoller } from '../apps/worker/src/maintenance/tasks-changed-in-ehr-poller';

/**
 * An approved session whose order is closed in the EHR (cancelled, stopped, entered in error) with nothing in its
 * place has no order to give: left `ready`, an EHR reading Task.status and a nurse reading the to-do list would take
 * it as still to give. It goes back to a clinician (awaiting approval, why in statusReason), its reminders revoked,
 * with a Provenance naming the service; approved again, it is ordered again. An order the EHR replaced (a dose
 * changed there, `priorPrescription`) keeps its session approved, however many times it was replaced.
 */
describe('an approved session whose order was closed in the EHR', () => {
  let service: TestService;
  beforeAll(async () => {
    // The EHR's replacements are not waited for here (a clinic waits ORDER_CHANGE_GRACE_MS, 60 s, for them).
    service = await startTestService({ orderChangeGraceMs: 0 });
  });
  afterAll(() => service.stop());

  const clinician = () => service.as('clinician');

  async function approvedSession(): Promise<{ task: Task; order: MedicationRequest; patient: string }> {
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const task = await approveFirstSession(service, carePlanId);
    const [order] = await ordersOf(task);
    return { task, order, patient };
  }

  /** A session approved on an order the EHR wrote for its time (`onOrder`): no order written here. */
  async function approvedOnEhrOrder(): Promise<{ task: Task; order: MedicationRequest }> {
    const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const session = tasks.find((t) => t.focus?.reference?.startsWith('MedicationRequest/'))!;
    const { ehrOrder: order } = await orderedInEhrFor(service, session);
    const approved = await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: session.meta!.versionId, onOrder: `MedicationRequest/${order.id}` })
      .expect(200);
    // The approval tags the order it rests on (since session 59): the EHR's next write of it starts from that version.
    const tagged = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect(tagged.meta?.tag?.map((t) => t.code)).toContain('session-order');
    return { task: approved.body as Task, order: tagged };
  }

  const ordersOf = (task: Task) =>
    service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(task.id!),
      _sort: '_lastUpdated',
    });

  const remindersOf = async (task: Task) =>
    (
      await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', { subject: task.for!.reference! })
    ).filter((r) => r.about?.some((a) => a.reference === `Task/${task.id}`));

  /** What the EHR does: the order cancelled, with its reason. */
  const cancelInEhr = (order: MedicationRequest, reason = 'Patient unwell') =>
    service.fhir.update<MedicationRequest>({ ...order, status: 'cancelled', statusReason: { text: reason } });

  /** The FHIR server's notification of the order (Medplum style, signed), and the worker's job for it done. */
  async function notify(order: MedicationRequest): Promise<void> {
    await postWebhook(service, JSON.stringify(order)).expect(202);
    await maintenanceJobDone(service, orderChangedJobId(order.id!), 'the worker to judge the notified order');
  }

  const read = (task: Task) => service.fhir.read<Task>('Task', task.id!);

  it('deleted in the EHR, as cancelled there: back to a clinician, told Medplum’s way or HAPI’s (an EHR’s order too)', async () => {
    const deleteOnServer = async (order: MedicationRequest) =>
      expect(
        (await fetch(`${service.config.fhirBaseUrl}/MedicationRequest/${order.id}`, { method: 'DELETE' })).status,
      ).toBe(200);
    const why =
      'Its order was cancelled in the EHR (deleted on the FHIR server): approve it again to order the session, or reject it';

    // Medplum: `{}` naming the order in X-Medplum-Deleted-Resource.
    const { task, order } = await approvedSession();
    await deleteOnServer(order);
    await postDeletion(service, `MedicationRequest/${order.id}`).expect(202);
    await maintenanceJobDone(service, orderChangedJobId(order.id!), 'the worker to judge the deleted order');
    const returned = await read(task);
    expect([returned.status, returned.statusReason?.text]).toEqual(['draft', why]);
    expect((await remindersOf(task)).every((r) => r.status === 'revoked')).toBe(true);

    // HAPI: DELETE {endpoint}/MedicationRequest/{id}; the EHR's own order a session was approved on.
    const onEhrOrder = await approvedOnEhrOrder();
    await deleteOnServer(onEhrOrder.order);
    await request(service.url)
      .delete(`/webhooks/fhir/MedicationRequest/${onEhrOrder.order.id}`)
      .set('x-webhook-token', TEST_WEBHOOK_SECRET)
      .expect(202);
    await maintenanceJobDone(service, orderChangedJobId(onEhrOrder.order.id!), 'the worker to judge the deleted order');
    expect((await read(onEhrOrder.task)).status).toBe('draft');
  });

  it('deleted with its notification lost (the service restarting, say): the sweep finds the session with no order and returns it', async () => {
    const ours = await approvedSession();
    const onEhrOrder = await approvedOnEhrOrder();
    const untouched = await approvedSession();
    for (const order of [ours.order, onEhrOrder.order])
      expect(
        (await fetch(`${service.config.fhirBaseUrl}/MedicationRequest/${order.id}`, { method: 'DELETE' })).status,
      ).toBe(200);
    const open = await service.app.get(OpenTasksReader).all();
    expect(await service.app.get(ClosedOrderReviews).sweep(open)).toEqual({ returned: 2 });
    // Before, a session whose only order was gone stayed approved: on the to-do list with nothing to give.
    expect([(await read(ours.task)).status, (await read(ours.task)).statusReason?.text]).toEqual([
      'draft',
      'Its order was cancelled in the EHR (deleted on the FHIR server): approve it again to order the session, or reject it',
    ]);
    expect((await read(onEhrOrder.task)).status).toBe('draft');
    expect((await read(untouched.task)).status).toBe('ready');
  });

  it('goes back to a clinician with why, its reminders revoked and a Provenance; approved again, it is ordered again', async () => {
    const { task, order, patient } = await approvedSession();
    const reminders = await remindersOf(task);
    expect(reminders.length).toBeGreaterThan(0);
    expect(reminders.every((r) => r.status === 'active')).toBe(true);

    await notify(await cancelInEhr(order));

    const returned = await read(task);
    expect(returned.status).toBe('draft');
    expect(stateOf(returned)).toBe('awaiting-approval');
    const why =
      'Its order was cancelled in the EHR (Patient unwell): approve it again to order the session, or reject it';
    expect(returned.statusReason?.text).toBe(why);
    expect(returned.statusReason?.coding?.[0].code).toBe('order-closed-in-ehr');
    // The patient is not told to fast or to arrange a ride for a session with no order.
    expect((await remindersOf(task)).map((r) => r.status)).toEqual(reminders.map(() => 'revoked'));
    const [provenance] = (await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${task.id}` })).filter(
      (p) => p.activity?.text === 'return for review',
    );
    expect(provenance.agent[0].who?.display).toBe('ketamine-careplans (automatic)');
    expect(provenance.reason?.[0].text).toBe(why);
    expect(provenance.entity?.map((e) => e.what.reference)).toEqual([
      `Task/${task.id}/_history/${task.meta!.versionId}`,
      expect.stringMatching(new RegExp(`^MedicationRequest/${order.id}/_history/`)),
    ]);

    // On the worklist again, saying why; off the to-do list.
    const worklist = await request(service.url).get('/worklist').query({ patient }).set(clinician()).expect(200);
    const item = (worklist.body.items as { id: string; attention?: string }[]).find((i) => i.id === task.id);
    expect(item?.attention).toBe(why);
    const toDo = await request(service.url).get('/to-do').query({ patient }).set(clinician()).expect(200);
    expect((toDo.body.items as { id: string }[]).map((i) => i.id)).not.toContain(task.id);

    // The same notification again changes nothing (one Provenance, the Task as it is).
    await notify(order);
    expect((await read(task)).meta?.versionId).toBe(returned.meta?.versionId);

    // Approved again: a new order to give, the reminders active again, nothing left of why it was returned.
    const again = await request(service.url)
      .post(`/tasks/${task.id}/$approve`)
      .set(clinician())
      .send({ versionId: returned.meta!.versionId })
      .expect(200);
    expect((again.body as Task).status).toBe('ready');
    expect((again.body as Task).statusReason).toBeUndefined();
    expect((await ordersOf(task)).map((o) => o.status)).toEqual(['cancelled', 'active']);
    expect((await remindersOf(task)).map((r) => r.status)).toEqual(reminders.map(() => 'active'));
  });

  it('stays approved when the EHR replaced the order, even twice; the to-do list shows the last replacement', async () => {
    const { task, order, patient } = await approvedSession();
    // The prescriber changes the dose in the EHR, then again: each time the old order cancelled, the new one naming it.
    const { resource: first } = await service.fhir.create(ehrReplacementOf(order, infusionDosage(0.75, 60)));
    const cancelled = await cancelInEhr(order, 'Dose changed');
    await cancelInEhr(first, 'Dose changed again');
    await service.fhir.create(ehrReplacementOf(first, infusionDosage(0.6, 48)));

    await notify(cancelled);
    const still = await read(task);
    expect(still.status).toBe('ready');
    expect(still.meta?.versionId).toBe(task.meta?.versionId);

    type Row = { id: string; view: { orderedDose?: string; orderStatus?: string } };
    const rows = (await request(service.url).get('/to-do/view').query({ patient }).set(clinician()).expect(200)).body
      .items as Row[];
    const row = rows.find((r) => r.id === task.id);
    expect(row?.view.orderStatus).toBe('Ordered in the EHR, replacing the order approved here');
    expect(row?.view.orderedDose).toBe('0.6 mg/kg/h (48 mg/h)');
  });

  it('replaced in the EHR, the replaced order then deleted there: the replacement is still the session’s, closed when it is given', async () => {
    const { task, order, patient } = await approvedSession();
    const { resource: replacement } = await service.fhir.create(ehrReplacementOf(order, infusionDosage(0.75, 60)));
    expect((await fetch(`${service.config.fhirBaseUrl}/MedicationRequest/${order.id}`, { method: 'DELETE' })).ok).toBe(
      true,
    );
    await postDeletion(service, `MedicationRequest/${order.id}`).expect(202);
    await maintenanceJobDone(service, orderChangedJobId(order.id!), 'the worker to judge the deleted order');
    // Replaced: the session stays approved.
    expect((await read(task)).status).toBe('ready');
    // Given: the infusion answers the session, and closes the replacement with it. Before session 41 the replacement,
    // naming an order no longer on the server, was tied to no session, and stayed active after the drug went in (clinic
    // day, seed 1789).
    const start = Date.parse(task.restriction!.period!.start!) + 3_600_000;
    const infusion = await completeInfusion(
      service,
      { patient, carePlanId: carePlanReferenceOf(task)!.split('/')[1] },
      new Date(start).toISOString(),
    );
    await reportInfusion(service, infusion);
    expect((await read(task)).status).toBe('completed');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', replacement.id!)).status).toBe('completed');
  });

  it('ordered in the EHR after all (a replacement written late): approving it again rests on that order', async () => {
    const { task, order, patient } = await approvedSession();
    await notify(await cancelInEhr(order, 'Dose to change'));
    const returned = await read(task);
    expect(returned.status).toBe('draft');
    // The EHR's replacement, written after the session was returned.
    const { resource: replacement } = await service.fhir.create(ehrReplacementOf(order, infusionDosage(0.6, 48)));

    // A rate would be a second order's: refused, saying where the dose is changed.
    const withRate = await request(service.url)
      .post(`/tasks/${task.id}/$approve`)
      .set(clinician())
      .send({ versionId: returned.meta!.versionId, rate: { value: 0.75, unit: 'mg/kg/h' } })
      .expect(422);
    expect(withRate.body.issue[0].details.text).toMatch(
      /^The EHR has ordered this session since its order was closed \(Ketamine 0\.6 mg\/kg\/h \(48 mg\/h\), .*\): approve it without a rate, and change its dose in the EHR\.$/,
    );
    expect(withRate.body.issue[0].expression).toEqual([`MedicationRequest/${replacement.id}`]);
    await request(service.url)
      .post(`/tasks/${task.id}/$approve`)
      .set(clinician())
      .send({ versionId: returned.meta!.versionId })
      .expect(200);
    // No second order: the one approved here stays cancelled, the EHR's is the one to give.
    expect((await ordersOf(task)).map((o) => o.status)).toEqual(['cancelled']);
    type Row = { id: string; view: { orderedDose?: string; orderStatus?: string } };
    const rows = (await request(service.url).get('/to-do/view').query({ patient }).set(clinician()).expect(200)).body
      .items as Row[];
    expect(rows.find((r) => r.id === task.id)?.view).toMatchObject({
      orderStatus: 'Ordered in the EHR, replacing the order approved here',
      orderedDose: '0.6 mg/kg/h (48 mg/h)',
    });
  });

  it('approving a session the EHR has already ordered for its time is refused; named alongside, both are ordered', async () => {
    const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const session = tasks.find((t) => t.focus?.reference?.startsWith('MedicationRequest/'))!;
    const proposal = await service.fhir.read<MedicationRequest>(
      'MedicationRequest',
      session.focus!.reference!.split('/')[1],
    );
    const window = session.restriction!.period!;
    // The prescriber orders ketamine in the EHR directly, within the session's window, and another for months later.
    const { resource: same } = await service.fhir.create(
      ehrOrderLike(proposal, { start: window.start, end: window.start }),
    );
    await service.fhir.create(ehrOrderLike(proposal, { start: '2031-01-01T00:00:00Z', end: '2031-01-02T00:00:00Z' }));
    // And one with no time set (another session's, left open): not judged here.
    await service.fhir.create(ehrOrderLike(proposal));

    const refused = await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: session.meta!.versionId })
      .expect(409);
    // For an integrator (and the page): a duplicate, the orders by reference.
    expect(refused.body.issue[0].code).toBe('duplicate');
    expect(refused.body.issue[0].expression).toEqual([`MedicationRequest/${same.id}`]);
    expect(refused.body.issue[0].diagnostics).toBe(
      `Send "onOrder": "MedicationRequest/${same.id}" to approve the session on the EHR's order (no order is written), or "alongside": ["MedicationRequest/${same.id}"] if both orders are meant.`,
    );
    const day = window.start!.slice(0, 10);
    expect(refused.body.issue[0].details.text).toBe(
      `Already ordered outside this care plan for this session's time: Ketamine 0.5 mg/kg/h (40 mg/h), ${day}, ordered by Dr EHR. Approving would order the session twice: approve it on that order if it is this session's, cancel that order in the EHR, or reject this task.`,
    );
    // Each order in words (no ids in the clinician's text), with its reference: what the page labels its choices with.
    const sameInWords = `Ketamine 0.5 mg/kg/h (40 mg/h), ${day}, ordered by Dr EHR`;
    expect(refused.body.issue.slice(1)).toEqual([
      {
        severity: 'information',
        code: 'duplicate',
        details: { text: sameInWords },
        expression: [`MedicationRequest/${same.id}`],
      },
    ]);
    expect(await ordersOf(session)).toEqual([]);
    // Approved among others ($bulk-approve): refused alike, its result naming the orders for the choice.
    const bulk = await request(service.url)
      .post('/tasks/$bulk-approve')
      .set(clinician())
      .send({ tasks: [{ id: session.id, versionId: session.meta!.versionId }] })
      .expect(200);
    expect(bulk.body).toEqual({
      approved: 0,
      results: [
        {
          id: session.id,
          result: 'refused',
          status: 409,
          code: 'duplicate',
          expression: [`MedicationRequest/${same.id}`],
          orders: [{ reference: `MedicationRequest/${same.id}`, text: sameInWords }],
          message: refused.body.issue[0].details.text,
        },
      ],
    });
    expect(await ordersOf(session)).toEqual([]);
    // Not a reference: refused as bad input.
    await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: session.meta!.versionId, alongside: ['Patient/1'] })
      .expect(400);
    // The clinician means both: named, the session is ordered.
    await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: session.meta!.versionId, alongside: [`MedicationRequest/${same.id}`] })
      .expect(200);
    expect((await ordersOf(session)).map((o) => o.status)).toEqual(['active']);
  });

  it('approved on the order the EHR already has for it: no order written, the to-do list gives the EHR’s', async () => {
    const { carePlanId, patient } = await enrolPatient(service, 'ketamine-low-dose-series');
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const session = tasks.find((t) => t.focus?.reference?.startsWith('MedicationRequest/'))!;
    const { ehrOrder } = await orderedInEhrFor(service, session);
    const approve = (body: object) =>
      request(service.url)
        .post(`/tasks/${session.id}/$approve`)
        .set(clinician())
        .send({ versionId: session.meta!.versionId, ...body });
    const ref = `MedicationRequest/${ehrOrder.id}`;
    // Not an open order of the drug for this patient, or with a dose of its own: refused, nothing written.
    expect((await approve({ onOrder: 'MedicationRequest/no-such-order' })).status).toBe(422);
    const withRate = await approve({ onOrder: ref, rate: { value: 0.75, unit: 'mg/kg/h' } }).expect(422);
    expect(withRate.body.issue[0].details.text).toMatch(/the session is given at its dose/);
    expect((await approve({ onOrder: 'Patient/1' })).status).toBe(400);

    const approved = (await approve({ onOrder: ref }).expect(200)).body as Task;
    expect(approved.status).toBe('ready');
    expect(approved.basedOn?.map((b) => b.reference)).toContain(ref);
    expect(await ordersOf(session)).toEqual([]);
    type Row = { id: string; view: { orderedDose?: string; orderStatus?: string; dose?: unknown } };
    const rowOf = async () =>
      (
        (await request(service.url).get('/to-do/view').query({ patient }).set(clinician()).expect(200)).body
          .items as Row[]
      ).find((r) => r.id === session.id);
    expect((await rowOf())?.view).toMatchObject({
      orderStatus: 'Approved on the order written in the EHR',
      orderedDose: '0.5 mg/kg/h (40 mg/h)',
    });
    expect((await rowOf())?.view.dose).toBeUndefined();

    // The EHR cancels it later: its notification returns the session to a clinician at once (the job finds the Task
    // through the order's id in its basedOn), as with an order written here.
    await notify(await cancelInEhr(ehrOrder));
    const returned = await read(session);
    expect(returned.status).toBe('draft');
    expect(returned.statusReason?.text).toMatch(/^Its order was cancelled in the EHR \(Patient unwell\)/);

    // The EHR then writes a replacement of its order (no time set, so not judged a duplicate): approving the session
    // again rests on it, as for an order written here, and writes none.
    const { resource: replacement } = await service.fhir.create(
      ehrReplacementOf(await service.fhir.read('MedicationRequest', ehrOrder.id!), infusionDosage(0.5, 40)),
    );
    await approve({ versionId: returned.meta!.versionId }).expect(200);
    expect(await ordersOf(session)).toEqual([]);
    expect((await rowOf())?.view).toMatchObject({ orderStatus: expect.stringMatching(/^Ordered in the EHR/) });
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', replacement.id!)).status).toBe('active');
  });

  it('approved on the EHR’s order, which the EHR then replaces (its replacement and cancel in one transaction): stays approved', async () => {
    const { task, order } = await approvedOnEhrOrder();
    const { entry } = await service.fhir.transaction([
      { resource: ehrReplacementOf(order), request: { method: 'POST', url: 'MedicationRequest' } },
      updateEntry({ ...order, status: 'cancelled' }, order.meta!.versionId),
    ]);
    await notify(entry![1].resource as MedicationRequest);
    // Before, the replacement was looked for among orders written since the cancel (the EHR's order has no authoredOn),
    // which it preceded by a millisecond in the same transaction: the session went back to a clinician (seed 2249).
    expect((await read(task)).status).toBe('ready');
  });

  it('approved on the EHR’s order, given: that order is completed with its session', async () => {
    const { task, order } = await approvedOnEhrOrder();
    const start = Date.parse(task.restriction!.period!.start!) + 3_600_000;
    const infusion = await completeInfusion(
      service,
      { patient: task.for!.reference!, carePlanId: carePlanReferenceOf(task)!.split('/')[1] },
      new Date(start).toISOString(),
    );
    await reportInfusion(service, infusion);
    expect((await read(task)).status).toBe('completed');
    // Before session 42 the EHR's order stayed active after its session was given (only an order written here, or an
    // EHR replacement left open beside one, was closed with it): an order still to give, for a session given.
    const given = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect(given.status).toBe('completed');
  });

  /**
   * An infused patient (infusedForCheck: the next session and a booster planned), the next session approved on the
   * order a prescriber wrote for it in the EHR (from its window's start, no end set).
   */
  async function nextSessionOnEhrOrder() {
    const infused = await infusedForCheck(service);
    const { ehrOrder } = await orderedInEhrFor(service, infused.session);
    const ref = `MedicationRequest/${ehrOrder.id}`;
    await request(service.url)
      .post(`/tasks/${infused.session.id}/$approve`)
      .set(clinician())
      .send({ versionId: infused.session.meta!.versionId, onOrder: ref })
      .expect(200);
    return { ...infused, ehrOrder, ref };
  }

  /** A Task approved on that order too, as a build before session 42 could write it. */
  const approvedOnItToo = (task: Task, ref: string) =>
    service.fhir.update<Task>(approvedOnOrder(approve(task, undefined, new Date()), ref), {
      ifMatch: task.meta!.versionId,
    });

  /**
   * `ref` is another session's order: approving `booster` on it would have one dose answer two sessions (refused), and
   * approving it plainly is not refused as ordered twice (before, the order was offered to approve on): its own order
   * is written.
   */
  async function expectAnotherSessionsOrder(booster: Task, ref: string): Promise<void> {
    // The booster's row says nothing of it (before: "Already ordered in the EHR for this session's time"; for the
    // EHR's replacement, until session 49).
    const view = await request(service.url)
      .get('/worklist/view')
      .query({ patient: booster.for!.reference })
      .set(clinician())
      .expect(200);
    const row = (view.body.items as { id: string; view: { ehrOrders?: string } }[]).find((i) => i.id === booster.id);
    expect(row).toBeDefined();
    expect(row!.view.ehrOrders).toBeUndefined();
    const onIt = await request(service.url)
      .post(`/tasks/${booster.id}/$approve`)
      .set(clinician())
      .send({ versionId: booster.meta!.versionId, onOrder: ref })
      .expect(409);
    expect(onIt.body.issue[0].details.text).toMatch(/is the order of another session of this patient/);
    const approved = await request(service.url)
      .post(`/tasks/${booster.id}/$approve`)
      .set(clinician())
      .send({ versionId: booster.meta!.versionId })
      .expect(200);
    expect((approved.body as Task).basedOn?.map((b) => b.reference)).not.toContain(ref);
    expect(await ordersOf(booster)).toHaveLength(1);
  }

  it('an order the EHR wrote that one session was approved on is that session’s: another is not approved on it, nor refused for it', async () => {
    const { booster, ref } = await nextSessionOnEhrOrder();
    await expectAnotherSessionsOrder(booster, ref);
  });

  it('the EHR’s replacement of that order (a dose changed there) is that session’s too: another is not approved on it, nor refused for it (seed 2949)', async () => {
    const { booster, ehrOrder } = await nextSessionOnEhrOrder();
    // The EHR changes the dose by a new order replacing the one the session was approved on (cancelled).
    const { resource: replacement } = await service.fhir.create(ehrReplacementOf(ehrOrder));
    await service.fhir.update<MedicationRequest>({ ...ehrOrder, status: 'cancelled' });
    const replacementRef = `MedicationRequest/${replacement.id}`;
    // Before session 48 the replacement was refused as "ordered outside this care plan" for the booster's time and
    // offered to approve it on: one dose then answered two sessions.
    await expectAnotherSessionsOrder(booster, replacementRef);
  });

  // Since session 50; before, the chain ended at the order deleted, and the replacement was offered to the booster.
  it('the same when the EHR then deleted the order it replaced: the replacement is still that session’s', async () => {
    const { booster, ehrOrder } = await nextSessionOnEhrOrder();
    const { resource: replacement } = await service.fhir.create(ehrReplacementOf(ehrOrder));
    expect(
      (await fetch(`${service.config.fhirBaseUrl}/MedicationRequest/${ehrOrder.id}`, { method: 'DELETE' })).ok,
    ).toBe(true);
    await expectAnotherSessionsOrder(booster, `MedicationRequest/${replacement.id}`);
  });

  it('its Task cancelled in the EHR (status alone): at its notification, its order cancelled and its reminders revoked, with a Provenance', async () => {
    const { task, order } = await approvedSession();
    expect((await remindersOf(task)).some((r) => r.status === 'active')).toBe(true);
    const cancelled = await service.fhir.update<Task>(
      { ...(await read(task)), status: 'cancelled' },
      { ifMatch: task.meta!.versionId },
    );
    await postWebhook(service, JSON.stringify(cancelled)).expect(202);
    const jobId = taskChangedInEhrJobId(task.id!, cancelled.meta!.versionId);
    await maintenanceJobDone(service, jobId, 'the session closed in the EHR');
    // Before, the order stayed active until the 15-minute reconciliation, and the reminders until their delivery.
    const now = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect([now.status, now.statusReason?.text]).toEqual(['cancelled', 'Its Task was cancelled in the EHR']);
    expect((await remindersOf(task)).filter((r) => r.status === 'active')).toEqual([]);
    const [provenance] = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `MedicationRequest/${order.id}` })
    ).filter((p) => p.activity?.text === 'close the order of a closed Task');
    expect(provenance?.reason?.[0].text).toBe('Its Task was cancelled in the EHR');
    // The EHR's closing stands: the Task is left as it wrote it.
    expect((await read(task)).meta?.versionId).toBe(cancelled.meta?.versionId);
    // Notified again (or by id alone): nothing more to write.
    await postWebhook(service, JSON.stringify(cancelled)).expect(202);
    await maintenanceJobDone(service, jobId, 'the session closed in the EHR, again');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).meta?.versionId).toBe(
      now.meta?.versionId,
    );
  });

  it('patient instructions approved, their Task cancelled in the EHR: at its notification, the instructions’ order is revoked', async () => {
    const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const draft = tasks.find((t) => t.focus?.reference?.startsWith('CommunicationRequest/'))!;
    const approved = (
      await request(service.url)
        .post(`/tasks/${draft.id}/$approve`)
        .set(clinician())
        .send({ versionId: draft.meta!.versionId })
        .expect(200)
    ).body as Task;
    const ordered = () =>
      service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', { identifier: orderKeySearch(draft.id!) });
    expect((await ordered()).map((o) => o.status)).toEqual(['active']);
    const cancelled = await service.fhir.update<Task>(
      { ...approved, status: 'cancelled' },
      { ifMatch: approved.meta!.versionId },
    );
    await postWebhook(service, JSON.stringify(cancelled)).expect(202);
    await maintenanceJobDone(
      service,
      taskChangedInEhrJobId(draft.id!, cancelled.meta!.versionId),
      'the instructions closed in the EHR',
    );
    // Before session 44, only infusion sessions: the instructions stayed active until the 15-minute reconciliation.
    expect((await ordered()).map((o) => [o.status, o.statusReason?.text])).toEqual([
      ['revoked', 'Its Task was cancelled in the EHR'],
    ]);
  });

  it('approved on the EHR’s order, its Task cancelled in the EHR as the pump gave it (seed 5009): that order completed as given', async () => {
    const { task, order } = await approvedOnEhrOrder();
    const approved = await read(task);
    await service.fhir.update<Task>({ ...approved, status: 'cancelled' }, { ifMatch: approved.meta!.versionId });
    const start = Date.parse(task.restriction!.period!.start!) + 3_600_000;
    const { resource: given } = await service.fhir.create(
      administrationOf(order, 'completed', {
        start: new Date(start).toISOString(),
        end: new Date(start + 50 * 60_000).toISOString(),
      }),
    );
    await service.app.get(AnsweredOrdersSweep).sweep();
    // Before, a session the pump had begun was left to its infusion, whose follow-up reads only open Tasks: the order
    // stayed active after the drug went in (and under the plan once stopped).
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
    const [provenance] = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `MedicationRequest/${order.id}` })
    ).filter((p) => p.activity?.text === 'given at the pump');
    expect(provenance?.entity?.map((e) => e.what.reference)).toContain(`MedicationAdministration/${given.id}`);
  });

  // Before session 49 the order stayed active after the drug went in until the 15-minute reconciliation.
  /** A session approved here whose order the EHR then replaced (a dose changed there; cancel and replacement at once). */
  async function replacedInEhr(): Promise<{ task: Task; order: MedicationRequest }> {
    const { task, order } = await approvedSession();
    const { entry } = await service.fhir.transaction([
      { resource: ehrReplacementOf(order), request: { method: 'POST', url: 'MedicationRequest' } },
      updateEntry({ ...order, status: 'cancelled' }, order.meta!.versionId),
    ]);
    return { task, order: entry![0].resource as MedicationRequest };
  }

  it.each([
    ['its order written here', approvedSession],
    ['approved on the EHR’s order', approvedOnEhrOrder],
    ['its order replaced in the EHR', replacedInEhr],
  ] as const)(
    'a session (%s) cancelled in the EHR while the pump runs it: left to the pump, then completed as given when the pump’s record completes',
    async (_, approvedHow) => {
      const { task, order } = await approvedHow();
      const start = Date.parse(task.restriction!.period!.start!) + 3_600_000;
      const period = { start: new Date(start).toISOString(), end: new Date(start + 50 * 60_000).toISOString() };
      const { resource: running } = await service.fhir.create(administrationOf(order, 'in-progress', period));
      const approved = await read(task);
      const cancelled = await service.fhir.update<Task>(
        { ...approved, status: 'cancelled' },
        { ifMatch: approved.meta!.versionId },
      );
      await postWebhook(service, JSON.stringify(cancelled)).expect(202);
      await maintenanceJobDone(service, taskChangedInEhrJobId(task.id!, cancelled.meta!.versionId), 'the Task’s job');
      // The pump is running it: not cancelled under it.
      expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
      const given = await service.fhir.update<MedicationAdministration>({ ...running, status: 'completed' });
      await service.app.get(AdministrationRecorded).heard(given.id!);
      await maintenanceJobDone(service, taskChangedInEhrJobId(task.id!, cancelled.meta!.versionId), 'the Task’s job');
      expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
    },
  );

  it('approved on the EHR’s order, its Task completed in the EHR, found by the poll on a server that cannot notify: that order completed', async () => {
    const poller = service.app.get(TasksChangedInEhrPoller);
    await poller.poll();
    const { task, order } = await approvedOnEhrOrder();
    const approved = await read(task);
    const completed = await service.fhir.update<Task>(
      { ...approved, status: 'completed' },
      { ifMatch: approved.meta!.versionId },
    );
    expect((await poller.poll()).queued).toBe(1);
    await maintenanceJobDone(
      service,
      taskChangedInEhrJobId(task.id!, completed.meta!.versionId),
      'the session closed in the EHR',
    );
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
    // Its own closings (an approval's, the reconciliation's) are not queued.
    expect((await poller.poll()).queued).toBe(0);
  });

  it('its order replaced in the EHR, then its Task cancelled there, the notification lost: the reconciliation cancels the replacement (clinic day, seed 2303)', async () => {
    const { task, order } = await approvedSession();
    const { resource: replacement } = await service.fhir.create(ehrReplacementOf(order, infusionDosage(0.75, 60)));
    await cancelInEhr(order, 'Dose changed');
    const approved = await read(task);
    await service.fhir.update<Task>({ ...approved, status: 'cancelled' }, { ifMatch: approved.meta!.versionId });
    const swept = await service.app.get(AnsweredOrdersSweep).sweep();
    // Before, only the orders written here and those a session was approved on were looked at: the EHR's replacement
    // stayed active under a cancelled session (and, its plan stopped later, under a stopped plan).
    expect(swept.closed).toBeGreaterThanOrEqual(1);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', replacement.id!)).status).toBe('cancelled');
    expect((await remindersOf(task)).filter((r) => r.status === 'active')).toEqual([]);
  });

  it('approved on the EHR’s order, its Task then completed by the EHR itself: the reconciliation completes that order', async () => {
    const { session, ehrOrder } = await nextSessionOnEhrOrder();
    const approved = await read(session);
    await service.fhir.update<Task>({ ...approved, status: 'completed' }, { ifMatch: approved.meta!.versionId });
    const swept = await service.app.get(AnsweredOrdersSweep).sweep();
    // Before, only the orders written here were reconciled: the EHR's stayed active under a completed session.
    expect(swept.closed).toBeGreaterThanOrEqual(1);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', ehrOrder.id!)).status).toBe('completed');
    // Looked at again: nothing more to write.
    expect((await service.app.get(AnsweredOrdersSweep).sweep()).closed).toBe(0);
  });

  it('approved on the EHR’s order, its Task completed by the EHR while no reconciliation ran for two days: the next one completes that order', async () => {
    const sweep = service.app.get(AnsweredOrdersSweep);
    await sweep.sweep();
    const { session, ehrOrder } = await nextSessionOnEhrOrder();
    const approved = await read(session);
    await service.fhir.update<Task>({ ...approved, status: 'completed' }, { ifMatch: approved.meta!.versionId });
    // The worker down for two days: the next sweep reads the Tasks closed since the last one began (before, only those
    // of the last day, and the EHR's order stayed active under a completed session).
    const twoDaysOn = new Date(Date.now() + 2 * 24 * 3600_000);
    expect((await sweep.sweep(twoDaysOn)).closed).toBeGreaterThanOrEqual(1);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', ehrOrder.id!)).status).toBe('completed');
  });

  it('two sessions approved on one EHR order (as a build before session 42 allowed): a contraindication holds it, and both', async () => {
    const { session, booster, patient, carePlanId, ehrOrder, ref } = await nextSessionOnEhrOrder();
    await approvedOnItToo(booster, ref);
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], patient));
    await service.app.get(ContraindicationSweep).sweep();
    // Before, the order's update went twice into the hold's transaction, which failed whole: nothing was held.
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', ehrOrder.id!)).status).toBe('on-hold');
    for (const task of [session, booster]) expect((await read(task)).status).toBe('on-hold');
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlanId}`,
    });
    expect(issue.implicated?.map((r) => r.reference)).toEqual(expect.arrayContaining([ref]));
  });

  it('two sessions approved on one EHR order (as a build before session 42 allowed): a paused plan holds it', async () => {
    const { booster, carePlanId, ehrOrder, ref } = await nextSessionOnEhrOrder();
    await approvedOnItToo(booster, ref);
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'on-hold' });
    await service.app.get(PausedPlanHolds).hold(await service.app.get(OpenTasksReader).all());
    // Before, the order's update went twice into the plan's transaction, which failed whole: it stayed active.
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', ehrOrder.id!)).status).toBe('on-hold');
  });

  it('two sessions approved on one EHR order (as a build before session 42 allowed): an infusion answering both closes it once, planning again without that infusion cancels it once', async () => {
    const { session, booster, patient, carePlanId, ehrOrder, ref } = await nextSessionOnEhrOrder();
    await approvedOnItToo(booster, ref);
    const infusion = await completeInfusion(
      service,
      { patient, carePlanId },
      new Date(Date.parse(session.restriction!.period!.start!) + 3_600_000).toISOString(),
    );
    const outcome = await reportInfusion(service, infusion);
    expect(outcome).toMatchObject({ status: 'created' });
    expect([(await read(session)).status, (await read(booster)).status]).toEqual(['completed', 'cancelled']);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', ehrOrder.id!)).status).toBe('completed');

    // The infusion then recorded in error, and planned again without it: the order is not given, cancelled once.
    const procedure = await service.fhir.read<Procedure>('Procedure', infusion);
    await postWebhook(
      service,
      JSON.stringify(await service.fhir.update<Procedure>({ ...procedure, status: 'entered-in-error' })),
    ).expect(202);
    await maintenanceJobDone(service, recheckContraindicationsJobId(`Procedure/${infusion}`), 'the infusion in error');
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlanId}`,
    });
    await request(service.url)
      .post(`/detected-issues/${issue.id}/$replan`)
      .set(clinician())
      .send({ versionId: issue.meta!.versionId, reason: 'Charted on the wrong patient' })
      .expect(200);
    expect([(await read(session)).status, (await read(booster)).status]).toEqual([
      'entered-in-error',
      'entered-in-error',
    ]);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', ehrOrder.id!)).status).toBe('cancelled');
  });

  it('two sessions approved on one EHR order (as a build before session 42 allowed): a stopped plan withdraws both and cancels it', async () => {
    const { session, booster, carePlanId, ehrOrder, ref } = await nextSessionOnEhrOrder();
    await approvedOnItToo(booster, ref);
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'revoked' });
    const open = () => service.app.get(OpenTasksReader).read({ 'based-on': `CarePlan/${carePlanId}` });
    const sweep = service.app.get(StoppedPlanSweep);
    // One transaction a Task: the second Task's cancel of the shared order may lose its If-Match to the first, and
    // is written again at the next run, reading the order cancelled.
    // Its infusion's post-infusion check outlives the plan (session 52): not counted.
    const stillOpen = async () => {
      const { approved, awaiting, held } = await open();
      return [...approved, ...awaiting, ...held].filter((t) => !isCheckOfAnInfusion(t)).length;
    };
    await sweep.sweep(new Date(), await open());
    if (await stillOpen()) await sweep.sweep(new Date(), await open());
    expect(await stillOpen()).toBe(0);
    expect([(await read(session)).status, (await read(booster)).status]).toEqual(['cancelled', 'cancelled']);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', ehrOrder.id!)).status).toBe('cancelled');
  });

  it('the EHR’s replacement is the order a paused plan holds and a stopped plan withdraws', async () => {
    const { task, order } = await approvedSession();
    const carePlanId = task.basedOn!.find((b) => b.reference?.startsWith('CarePlan/'))!.reference!.split('/')[1];
    await cancelInEhr(order, 'Dose changed');
    const { resource: ehrOrder } = await service.fhir.create(ehrReplacementOf(order));
    const setPlan = async (status: CarePlan['status']) => {
      const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
      await service.fhir.update<CarePlan>({ ...plan, status });
    };
    const openOfPlan = () => service.app.get(OpenTasksReader).read({ 'based-on': `CarePlan/${carePlanId}` });
    const ehrOrderNow = () => service.fhir.read<MedicationRequest>('MedicationRequest', ehrOrder.id!);

    // Paused: the EHR's order is held (it is the one that would be given), and released when the plan resumes.
    await setPlan('on-hold');
    const holds = service.app.get(PausedPlanHolds);
    expect(await holds.hold(await openOfPlan())).toBe(1);
    expect((await ehrOrderNow()).status).toBe('on-hold');
    await setPlan('active');
    expect(await holds.release(await holds.heldOrders(carePlanId))).toBe(1);
    expect((await ehrOrderNow()).status).toBe('active');

    // Stopped: the session is withdrawn with the EHR's order, so nothing is left to give under a stopped plan.
    await setPlan('revoked');
    // (With the plan's Tasks awaiting approval.)
    expect((await service.app.get(StoppedPlanSweep).sweep(new Date(), await openOfPlan())).withdrawn).toBeGreaterThan(
      1,
    );
    expect((await ehrOrderNow()).status).toBe('cancelled');
    expect((await read(task)).status).toBe('cancelled');
  });

  it('the EHR’s own order a session was approved on, naming no plan, given under a plan stopped since and charted after its infusion was followed up: the pump’s record has the infusion followed up again, which answers it', async () => {
    const { task, order } = await approvedOnEhrOrder();
    expect(order.basedOn).toBeUndefined();
    const carePlanId = carePlanReferenceOf(task)!.split('/')[1];
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'revoked' });
    const infusion = await completeInfusion(
      service,
      { patient: task.for!.reference!, carePlanId },
      new Date(Date.parse(task.restriction!.period!.start!) + 3_600_000).toISOString(),
    );
    // Its check alone (session 52; ignored before): nothing the pump gave is on record yet.
    expect(await reportInfusion(service, infusion)).toMatchObject({ status: 'created', fulfilled: 0 });
    const start = Date.parse(task.restriction!.period!.start!) + 5 * 60_000;
    const { resource: given } = await service.fhir.create(
      administrationOf(order, 'completed', {
        start: new Date(start).toISOString(),
        end: new Date(start + 50 * 60_000).toISOString(),
      }),
    );
    await postWebhook(service, JSON.stringify(given)).expect(202);
    await maintenanceJobDone(service, administrationRecordedJobId(given.id!), 'the pump’s record heard');
    // The order names no plan, so the plan's withdrawal is not asked for; the infusion is followed up again, which
    // answers a session the pump gave during it under a stopped plan.
    await waitFor(async () => (await read(task)).status === 'completed', 'the session answered');
    expect((await read(task)).output?.[0]?.valueReference?.reference).toBe(`Procedure/${infusion}`);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
  });

  it('the EHR’s own order a session was approved on, naming no plan, is held while the plan is paused', async () => {
    const { task, order } = await approvedOnEhrOrder();
    expect(order.basedOn).toBeUndefined();
    const carePlanId = task.basedOn!.find((b) => b.reference?.startsWith('CarePlan/'))!.reference!.split('/')[1];
    const setPlan = async (status: CarePlan['status']) => {
      const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
      await service.fhir.update<CarePlan>({ ...plan, status });
    };
    const orderNow = () => service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    const holds = service.app.get(PausedPlanHolds);

    await setPlan('on-hold');
    expect(
      await holds.hold(await service.app.get(OpenTasksReader).read({ 'based-on': `CarePlan/${carePlanId}` })),
    ).toBe(1);
    const held = await orderNow();
    expect(held.status).toBe('on-hold');
    // The hold names the plan it is for (the order names none), which is how the plan's resumption finds it.
    expect(held.extension).toEqual([
      {
        url: 'https://ketamine-careplans.example/fhir/StructureDefinition/held-for-plan',
        valueReference: { reference: `CarePlan/${carePlanId}` },
      },
    ]);
    await setPlan('active');
    expect(await holds.release(await holds.heldOrders(carePlanId))).toBe(1);
    const released = await orderNow();
    expect(released.status).toBe('active');
    expect(released.extension).toBeUndefined();
    expect(released.statusReason).toBeUndefined();
  });

  it('held so, and rewritten whole by the EHR without the hold’s extension: the plan’s resumption still releases it', async () => {
    const { task, order } = await approvedOnEhrOrder();
    const carePlanId = task.basedOn!.find((b) => b.reference?.startsWith('CarePlan/'))!.reference!.split('/')[1];
    const setPlan = async (status: CarePlan['status']) => {
      const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
      await service.fhir.update<CarePlan>({ ...plan, status });
    };
    const holds = service.app.get(PausedPlanHolds);
    await setPlan('on-hold');
    await holds.hold(await service.app.get(OpenTasksReader).read({ 'based-on': `CarePlan/${carePlanId}` }));
    // The EHR writes the order back as it knows it: status, reason and tag kept, the extension it does not know gone.
    const { extension: _unknown, ...asTheEhrKnowsIt } = await service.fhir.read<MedicationRequest>(
      'MedicationRequest',
      order.id!,
    );
    await service.fhir.update<MedicationRequest>({ ...asTheEhrKnowsIt, note: [{ text: 'Pharmacy checked' }] });

    await setPlan('active');
    expect(await holds.release(await holds.heldOrders(carePlanId))).toBe(1);
    const released = await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!);
    expect(released.status).toBe('active');
    expect(released.note).toEqual([{ text: 'Pharmacy checked' }]);
  });

  it('found by the poll on a server that cannot notify, by the sweep, and by a HAPI-style notification', async () => {
    // The embedded FHIR server sends no notifications: the poll finds the closed order.
    const polled = await approvedSession();
    await cancelInEhr(polled.order);
    // The poll queues every order of this service closed since its cursor (the earlier tests' too).
    expect((await service.app.get(ClosedOrdersPoller).poll()).queued).toBeGreaterThanOrEqual(1);
    await maintenanceJobDone(service, orderChangedJobId(polled.order.id!), 'the worker to judge the polled order');
    expect((await read(polled.task)).status).toBe('draft');

    // A session approved on the EHR's own order: the poll finds that order closed through the Task naming it.
    const onEhrOrder = await approvedOnEhrOrder();
    await cancelInEhr(onEhrOrder.order);
    expect((await service.app.get(ClosedOrdersPoller).poll()).queued).toBe(1);
    await maintenanceJobDone(service, orderChangedJobId(onEhrOrder.order.id!), 'the worker to judge the polled order');
    expect((await read(onEhrOrder.task)).status).toBe('draft');
    // An order of the EHR's no session rests on, closed: nothing to queue.
    await cancelInEhr((await service.fhir.create(ehrOrderLike(onEhrOrder.order))).resource);
    expect((await service.app.get(ClosedOrdersPoller).poll()).queued).toBe(0);

    // The 15-minute sweep looks at every approved session.
    const swept = await approvedSession();
    const untouched = await approvedSession();
    await service.fhir.update<MedicationRequest>({ ...swept.order, status: 'stopped' });
    const open = await service.app.get(OpenTasksReader).all();
    expect(await service.app.get(ClosedOrderReviews).sweep(open)).toEqual({ returned: 1 });
    expect((await read(swept.task)).statusReason?.text).toMatch(/^Its order was stopped in the EHR: approve it again/);
    expect((await read(untouched.task)).status).toBe('ready');

    // HAPI: PUT with the id, a fixed token header.
    const hapi = await approvedSession();
    await cancelInEhr(hapi.order);
    await request(service.url)
      .put(`/webhooks/fhir/MedicationRequest/${hapi.order.id}`)
      .set('x-webhook-token', TEST_WEBHOOK_SECRET)
      .expect(202);
    await maintenanceJobDone(service, orderChangedJobId(hapi.order.id!), 'the worker to judge the notified order');
    expect((await read(hapi.task)).status).toBe('draft');
  });
});
