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
import { administrationOf, ehrReplacementOf } from './fixtures/orders';
import type { Queue } from 'bullmq';
import { getQueueToken } from '@nestjs/bullmq';
import { carePlanReferenceOf } from '@kc/followups';
import { administrationRecordedJobId, QUEUES, recheckContraindicationsJobId } from '@kc/queue';
import { approvedSessionOrder, infusedForCheck } from './support/checks';
import {
  tellInfusionHoldingItsWrite,
  actionOf,
  completeInfusion,
  enrolPatient,
  followUpJobDone,
  maintenanceJobDone,
  orderedInEhrFor,
  overrideIssue,
  postDeletion,
  postWebhook,
  reportInfusion,
  waitFor,
} from './support/clinic';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { InfusionsInError } from '../apps/worker/src/maintenance/infusions-in-error';
import { ProcedurePoller } from '../apps/worker/src/maintenance/procedure-poller';
import { startBehindProxy, type FlakyProxy, type ServiceBehindProxy } from './support/flaky-proxy';
import { startTestService, type TestService } from './support/test-service';

const DAY = 86_400_000;

/**
 * An infusion the EHR marks entered-in-error (or deletes) after its follow-ups were written: what it planned is timed
 * from an infusion that did not happen, and what it answered is done although it was not. Before, nothing changed:
 * its next session could be approved and given on that timing. Now its plan is held as a contraindication holds it,
 * until a clinician puts it right and overrides the issue.
 */
describe('an infusion recorded in error after its follow-ups', () => {
  let service: TestService;
  // Behind a proxy, so a test can hold a follow-up's write back (a race made deterministic).
  let proxy: FlakyProxy;
  let behind: ServiceBehindProxy<TestService>;
  beforeAll(async () => {
    behind = await startBehindProxy((fhirBaseUrl) => startTestService({ fhirBaseUrl }));
    ({ service, proxy } = behind);
  });
  afterEach(() => {
    proxy.beforeForward = () => undefined;
  });
  afterAll(() => behind.stop());

  const clinician = () => service.as('clinician');
  const heard = (procedureId: string) =>
    maintenanceJobDone(
      service,
      recheckContraindicationsJobId(`Procedure/${procedureId}`),
      'the worker to hear of the infusion in error',
    );
  const issuesOf = (carePlanId: string) =>
    service.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${carePlanId}` });

  it('entered in error and notified: its plan is held (the approved order, the other proposals), until a clinician overrides it', async () => {
    const { patient, carePlanId, procedureId, check, booster, session } = await infusedForCheck(service);
    const order = await approvedSessionOrder(service, session);

    const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
    const inError = await service.fhir.update<Procedure>({ ...procedure, status: 'entered-in-error' });
    await postWebhook(service, JSON.stringify(inError)).expect(202);
    await heard(procedureId);

    const [issue] = await issuesOf(carePlanId);
    expect(issue).toMatchObject({
      status: 'preliminary',
      severity: 'high',
      code: { coding: [expect.objectContaining({ code: 'infusion-recorded-in-error' })] },
    });
    // It names what the infusion left behind, for the clinician to put right.
    expect(issue.implicated?.map((r) => r.reference)).toEqual(
      expect.arrayContaining([
        `CarePlan/${carePlanId}`,
        `Task/${check.id}`,
        `Task/${booster.id}`,
        `Task/${session.id}`,
      ]),
    );
    expect(issue.detail).toMatch(new RegExp(`^The infusion Procedure/${procedureId} was recorded in error`));
    // An EHR reading the order's status sees nothing is to be given.
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
    // The booster it proposed is not approved on that timing.
    const booster1 = await service.fhir.read<Task>('Task', booster.id!);
    const refused = await request(service.url)
      .post(`/tasks/${booster.id}/$approve`)
      .set(clinician())
      .send({ versionId: booster1.meta!.versionId })
      .expect(422);
    expect(refused.body.issue[0].details.text).toMatch(/Infusion recorded in error/);
    // The page shows the clinician why on the booster's row: the issue on record, which the row offers to override
    // (or the Task to reject) instead of Approve.
    const view = await request(service.url).get('/worklist/view').query({ patient }).set(clinician()).expect(200);
    const row = (
      view.body.items as {
        id: string;
        view: { contraindications: { id: string; text: string; state: string }[] };
      }[]
    ).find((i) => i.id === booster.id);
    expect(row?.view.contraindications).toEqual([
      expect.objectContaining({ id: issue.id, state: 'unresolved', text: expect.stringMatching(/recorded in error/i) }),
    ]);
    // Notified again: recorded once.
    await postWebhook(service, JSON.stringify(inError)).expect(202);
    await heard(procedureId);
    expect(await issuesOf(carePlanId)).toHaveLength(1);

    // The clinician puts the plan right by hand, then overrides it: the order goes back to active.
    await overrideIssue(service, issue, 'Booster rescheduled from the real infusion date').expect(200);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
  });

  it('planned again without it: what it planned withdrawn, the session it closed entered in error and proposed again, the issue resolved, in one decision', async () => {
    // The first session approved, then recorded as given (its order completed), and followed up.
    const enrolment = await enrolPatient(service, 'ketamine-high-dose-as-needed', {
      startDate: new Date(Date.now() - 10 * DAY).toISOString().slice(0, 10),
    });
    const { patient, carePlanId } = enrolment;
    const onPlan = () => service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const first = (await onPlan()).find((t) => actionOf(t) === 'infusion-session')!;
    const firstOrder = await approvedSessionOrder(service, first);
    const procedureId = await completeInfusion(service, enrolment, new Date(Date.now() - 2 * DAY).toISOString());
    await reportInfusion(service, procedureId);
    const planned = (await onPlan()).filter((t) => t.reasonReference?.reference === `Procedure/${procedureId}`);
    const [check, booster, session] = ['post-infusion-check', 'maintenance-booster', 'next-induction-session'].map(
      (action) => planned.find((t) => actionOf(t) === action)!,
    );
    const order = await approvedSessionOrder(service, session);
    const closed = await service.fhir.read<Task>('Task', first.id!);
    expect([closed.status, closed.description]).toEqual(['completed', 'First infusion session']);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', firstOrder.id!)).status).toBe('completed');
    const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
    const inError = await service.fhir.update<Procedure>({ ...procedure, status: 'entered-in-error' });
    await postWebhook(service, JSON.stringify(inError)).expect(202);
    await heard(procedureId);
    const [issue] = await issuesOf(carePlanId);

    const replan = (body: object) =>
      request(service.url).post(`/detected-issues/${issue.id}/$replan`).set(clinician()).send(body);
    const reason = 'Infusion charted on the wrong patient';
    const resolved = (await replan({ versionId: issue.meta!.versionId, reason }).expect(200)).body as DetectedIssue;
    expect(resolved.status).toBe('final');
    expect(resolved.mitigation?.[0]).toMatchObject({
      action: {
        coding: [expect.objectContaining({ code: 'replanned-without-infusion' })],
        text: `Planned again without the infusion: 3 Tasks it planned withdrawn; 1 it closed proposed again for approval. ${reason}`,
      },
      author: { reference: 'Practitioner/dr-test' },
    });

    // What it planned (the check, the booster, the next session approved) is withdrawn; the order is not to be given.
    for (const t of [check, booster, session]) {
      const now = await service.fhir.read<Task>('Task', t.id!);
      expect([now.status, now.statusReason?.text]).toEqual([
        'cancelled',
        expect.stringMatching(new RegExp(`^Withdrawn: it was planned from the infusion Procedure/${procedureId} of `)),
      ]);
    }
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('cancelled');
    // The session it closed did not happen: its record is entered in error, its order not given, and it is proposed
    // again (an EHR reading Task.status and MedicationRequest.status alone reads that right).
    expect((await service.fhir.read<Task>('Task', closed.id!)).status).toBe('entered-in-error');
    const notGiven = await service.fhir.read<MedicationRequest>('MedicationRequest', firstOrder.id!);
    expect([notGiven.status, notGiven.statusReason?.text]).toEqual([
      'cancelled',
      expect.stringMatching(
        new RegExp(
          `^Not given: the infusion Procedure/${procedureId} of .*, which completed it, was recorded in error$`,
        ),
      ),
    ]);
    const again = (await onPlan()).filter((t) => t.status === 'draft' && t.description === 'First infusion session');
    expect(again).toHaveLength(1);
    expect(again[0].identifier?.[0].value).toBe(`${carePlanId}:in-error-${procedureId}:${closed.id}`);
    const proposal = await service.fhir.read<MedicationRequest>(
      'MedicationRequest',
      again[0].focus!.reference!.split('/')[1],
    );
    expect([proposal.status, proposal.intent]).toEqual(['draft', 'proposal']);
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
    expect(plan.activity?.map((a) => a.reference?.reference)).toContain(`Task/${again[0].id}`);
    // One Provenance, the clinician's, names every write.
    const [provenance] = await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${again[0].id}` });
    expect(provenance).toMatchObject({
      activity: { text: 'plan again without the infusion recorded in error' },
      agent: [{ who: { reference: 'Practitioner/dr-test' } }],
    });
    expect(provenance.target.map((r) => r.reference)).toEqual(
      expect.arrayContaining([
        `DetectedIssue/${issue.id}`,
        `Task/${closed.id}`,
        `Task/${check.id}`,
        `MedicationRequest/${order.id}`,
        `MedicationRequest/${firstOrder.id}`,
        `MedicationRequest/${proposal.id}`,
        `CarePlan/${carePlanId}`,
      ]),
    );

    // Sent again (the answer lost): the same decision, nothing written twice. Another decision on that version: 409.
    expect((await replan({ versionId: issue.meta!.versionId, reason }).expect(200)).body.id).toBe(issue.id);
    expect(
      (await onPlan()).filter((t) => t.status === 'draft' && t.description === 'First infusion session'),
    ).toHaveLength(1);
    await overrideIssue(service, resolved, 'by hand').expect(409);

    // The plan is clear: the session proposed again is on the worklist and can be approved.
    const view = await request(service.url).get('/worklist/view').query({ patient }).set(clinician()).expect(200);
    const row = (view.body.items as { id: string; view: { contraindications: unknown[]; blocked?: unknown } }[]).find(
      (i) => i.id === again[0].id,
    );
    expect(row?.view.blocked).toBeUndefined();
    await request(service.url)
      .post(`/tasks/${again[0].id}/$approve`)
      .set(clinician())
      .send({ versionId: again[0].meta!.versionId })
      .expect(200);
  });

  /**
   * A plan's first session approved (here, on an order the EHR wrote, or here and then replaced in the EHR with the
   * order approved here left open beside it), given at the pump during an infusion or not, the infusion followed up
   * and then recorded in error: the orders the session had, and the issue.
   */
  async function closedByInfusionInError(how: 'on-ehr-order' | 'replaced-in-ehr', pump: 'given' | 'not recorded') {
    const enrolment = await enrolPatient(service, 'ketamine-high-dose-as-needed', {
      startDate: new Date(Date.now() - 10 * DAY).toISOString().slice(0, 10),
    });
    const onPlan = () => service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    const first = (await onPlan()).find((t) => actionOf(t) === 'infusion-session')!;
    let orders: MedicationRequest[];
    if (how === 'on-ehr-order') {
      const { ehrOrder } = await orderedInEhrFor(service, first);
      await request(service.url)
        .post(`/tasks/${first.id}/$approve`)
        .set(clinician())
        .send({ versionId: first.meta!.versionId, onOrder: `MedicationRequest/${ehrOrder.id}` })
        .expect(200);
      orders = [ehrOrder];
    } else {
      const order = await approvedSessionOrder(service, first);
      orders = [order, (await service.fhir.create(ehrReplacementOf(order))).resource];
    }
    const end = Date.now() - 2 * DAY;
    const procedureId = await completeInfusion(service, enrolment, new Date(end).toISOString());
    if (pump === 'given')
      await service.fhir.create(
        administrationOf(orders.at(-1)!, 'completed', {
          start: new Date(end - 50 * 60_000).toISOString(),
          end: new Date(end - 5 * 60_000).toISOString(),
        }),
      );
    await reportInfusion(service, procedureId);
    for (const order of orders)
      expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
    expect((await service.fhir.read<Task>('Task', first.id!)).status).toBe('completed');
    await takenBack(procedureId);
    const [issue] = await issuesOf(enrolment.carePlanId);
    await request(service.url)
      .post(`/detected-issues/${issue.id}/$replan`)
      .set(clinician())
      .send({ versionId: issue.meta!.versionId, reason: 'Infusion charted on the wrong patient' })
      .expect(200);
    const proposedAgain = (await onPlan()).filter(
      (t) => t.status === 'draft' && t.description === 'First infusion session',
    );
    return { first, orders, procedureId, proposedAgain };
  }

  it('planned again without it, a session it closed that was approved on the EHR’s order: that order not given either', async () => {
    const { first, orders, procedureId, proposedAgain } = await closedByInfusionInError('on-ehr-order', 'not recorded');
    expect((await service.fhir.read<Task>('Task', first.id!)).status).toBe('entered-in-error');
    expect(proposedAgain).toHaveLength(1);
    // Before, only an order written here was cancelled: the EHR's read completed (given) for a session not given.
    const ehrOrder = await service.fhir.read<MedicationRequest>('MedicationRequest', orders[0].id!);
    expect([ehrOrder.status, ehrOrder.statusReason?.text]).toEqual([
      'cancelled',
      expect.stringMatching(new RegExp(`^Not given: the infusion Procedure/${procedureId} of .*recorded in error$`)),
    ]);
  });

  it('planned again without it, a session it closed whose order the EHR had replaced (the first left open): both orders not given', async () => {
    const { orders, proposedAgain } = await closedByInfusionInError('replaced-in-ehr', 'not recorded');
    expect(proposedAgain).toHaveLength(1);
    for (const order of orders)
      expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('cancelled');
  });

  it('planned again without it, a session it closed that the pump recorded giving under the EHR’s order: it happened, and stays done', async () => {
    const { first, orders, proposedAgain } = await closedByInfusionInError('on-ehr-order', 'given');
    // Before, the pump's record of an order written elsewhere was not looked at: the session was marked in error and
    // proposed again (a second dose to approve), its order left completed.
    expect((await service.fhir.read<Task>('Task', first.id!)).status).toBe('completed');
    expect(proposedAgain).toEqual([]);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', orders[0].id!)).status).toBe('completed');
  });

  it('the same, given under the EHR’s replacement of the order approved here: stays done', async () => {
    const { first, orders, proposedAgain } = await closedByInfusionInError('replaced-in-ehr', 'given');
    expect((await service.fhir.read<Task>('Task', first.id!)).status).toBe('completed');
    expect(proposedAgain).toEqual([]);
    for (const order of orders)
      expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
  });

  it('only an infusion recorded in error is planned again, by a clinician, with a reason', async () => {
    const { carePlanId, patient } = await infusedForCheck(service);
    const { resource: other } = await service.fhir.create<DetectedIssue>({
      resourceType: 'DetectedIssue',
      status: 'preliminary',
      code: { text: 'Something else' },
      patient: { reference: patient },
      implicated: [{ reference: `CarePlan/${carePlanId}` }],
    });
    const refused = await request(service.url)
      .post(`/detected-issues/${other.id}/$replan`)
      .set(clinician())
      .send({ versionId: other.meta!.versionId, reason: 'x' })
      .expect(422);
    expect(refused.body).toMatchObject({ resourceType: 'OperationOutcome' });
    expect(refused.body.issue[0].details.text).toMatch(/Only an infusion recorded in error/);
    await request(service.url)
      .post(`/detected-issues/${other.id}/$replan`)
      .set(service.as('integration'))
      .send({ versionId: other.meta!.versionId, reason: 'x' })
      .expect(403);
    await request(service.url)
      .post(`/detected-issues/${other.id}/$replan`)
      .set(clinician())
      .send({ versionId: other.meta!.versionId })
      .expect(400);

    // Its plan stopped since: nothing is proposed again under it (409), the issue stays for an override.
    const stopped = await infusedForCheck(service);
    const procedure = await service.fhir.read<Procedure>('Procedure', stopped.procedureId);
    await postWebhook(
      service,
      JSON.stringify(await service.fhir.update<Procedure>({ ...procedure, status: 'entered-in-error' })),
    ).expect(202);
    await heard(stopped.procedureId);
    const [issue] = await issuesOf(stopped.carePlanId);
    const plan = await service.fhir.read<CarePlan>('CarePlan', stopped.carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'revoked' });
    const refusedStopped = await request(service.url)
      .post(`/detected-issues/${issue.id}/$replan`)
      .set(clinician())
      .send({ versionId: issue.meta!.versionId, reason: 'x' })
      .expect(409);
    expect(refusedStopped.body.issue[0].details.text).toBe(
      'Nothing is planned again: its care plan was stopped (revoked). Override this issue instead',
    );
    expect((await service.fhir.read<DetectedIssue>('DetectedIssue', issue.id!)).status).toBe('preliminary');
  });

  it('deleted in the EHR, notified: the same', async () => {
    const { carePlanId, procedureId } = await infusedForCheck(service);
    expect((await fetch(`${service.config.fhirBaseUrl}/Procedure/${procedureId}`, { method: 'DELETE' })).ok).toBe(true);
    await postDeletion(service, `Procedure/${procedureId}`).expect(202);
    await heard(procedureId);
    expect((await issuesOf(carePlanId)).map((i) => i.code?.coding?.[0].code)).toEqual(['infusion-recorded-in-error']);
  });

  it('on a server that notifies nothing, the poll finds it', async () => {
    const { carePlanId, procedureId } = await infusedForCheck(service);
    const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
    await service.fhir.update<Procedure>({ ...procedure, status: 'entered-in-error' });
    await service.app.get(ProcedurePoller).poll();
    await heard(procedureId);
    expect((await issuesOf(carePlanId)).map((i) => i.code?.coding?.[0].code)).toEqual(['infusion-recorded-in-error']);
  });

  it('taken back before its follow-up, after the pump gave a session during it: the session done as the pump recorded, its order completed, the plan held', async () => {
    const { patient, carePlanId, session } = await infusedForCheck(service);
    const order = await approvedSessionOrder(service, session);
    const start = Date.parse(session.restriction!.period!.start!) + 3600_000;
    const iso = (ms: number) => new Date(ms).toISOString();
    const { resource: given } = await service.fhir.create(
      administrationOf(order, 'completed', { start: iso(start + 300_000), end: iso(start + 3_300_000) }),
    );
    const second = await completeInfusion(service, { patient, carePlanId }, iso(start + 3_600_000));
    const recorded = await service.fhir.read<Procedure>('Procedure', second);
    const inError = await service.fhir.update<Procedure>({ ...recorded, status: 'entered-in-error' });
    // Its follow-up runs after it was taken back: it follows up nothing.
    expect(await reportInfusion(service, second)).toMatchObject({ status: 'ignored' });
    await postWebhook(service, JSON.stringify(inError)).expect(202);
    await heard(second);

    // Before, nothing answered the session: approved, its order active after the pump gave it, to be given again (or
    // held with a paused plan and released to active by an override).
    const done = await service.fhir.read<Task>('Task', session.id!);
    expect(done.status).toBe('completed');
    expect(done.output).toEqual([
      expect.objectContaining({
        valueReference: expect.objectContaining({ reference: `MedicationAdministration/${given.id}` }),
      }),
    ]);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
    // Its reminders still to come revoked with it, as when its infusion answers a session (before, left active:
    // revoked only at their delivery, so an EHR reading them saw a fasting reminder pending for a session given).
    const reminders = await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
      'based-on': `CarePlan/${carePlanId}`,
    });
    const itsOwn = reminders.filter((r) => r.about?.some((a) => a.reference === `Task/${session.id}`));
    expect(itsOwn.length).toBeGreaterThan(0);
    expect(itsOwn.filter((r) => r.status === 'active').map((r) => r.occurrenceDateTime)).toEqual([]);
    const [provenance] = await service.fhir
      .searchAll<Provenance>('Provenance', { target: `Task/${session.id}` })
      .then((all) => all.filter((p) => p.activity?.text === 'given at the pump'));
    expect(provenance.entity).toEqual([
      { role: 'source', what: { reference: `MedicationAdministration/${given.id}` } },
    ]);
    // The clinic is told: no check or next session was planned from it.
    const issues = (await issuesOf(carePlanId)).filter((i) =>
      i.evidence?.some((e) => e.detail?.some((d) => d.reference === `Procedure/${second}`)),
    );
    expect(issues).toHaveLength(1);
    expect(issues[0].implicated).toEqual(expect.arrayContaining([{ reference: `Task/${session.id}` }]));
    expect(issues[0].detail).toMatch(
      /before its follow-ups were planned, but the pump recorded giving 1 approved session/,
    );
    // Notified again: nothing more.
    await postWebhook(service, JSON.stringify(inError)).expect(202);
    await heard(second);
    expect(await issuesOf(carePlanId)).toHaveLength(issues.length);

    // Paused, then overridden: the order the pump gave stays completed.
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'on-hold' });
    await overrideIssue(service, issues[0], 'Infusion recorded again by hand').expect(200);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
  });

  /**
   * A session approved after an infusion, begun at the pump a day early by its record (a wrong clock), then given during
   * the next infusion, which its follow-up (reading the pump as begun, not during it) leaves to the infusion the pump
   * gave it in: the session, its order, and that infusion.
   */
  async function sessionLeftOpenByItsInfusion() {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const onPlan = () => service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    const first = (await onPlan()).find((t) => actionOf(t) === 'infusion-session')!;
    await approvedSessionOrder(service, first);
    const before = await completeInfusion(service, enrolment, '2027-01-02T02:00:00.000Z');
    await reportInfusion(service, before);
    const session = (await onPlan()).find(
      (t) => actionOf(t) === 'next-induction-session' && t.reasonReference?.reference === `Procedure/${before}`,
    )!;
    const order = await approvedSessionOrder(service, session);
    await service.fhir.create(
      administrationOf(order, 'in-progress', { start: '2027-01-06T09:00:00.000Z', end: '2027-01-06T09:10:00.000Z' }),
    );
    const infusion = await completeInfusion(service, enrolment, '2027-01-07T10:00:00.000Z');
    expect(await reportInfusion(service, infusion)).toMatchObject({ status: 'created', fulfilled: 0 });
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('ready');
    return { enrolment, session, order, infusion };
  }
  const chartedGivenAt = (order: MedicationRequest, period: { start: string; end: string }) =>
    service.fhir.create(administrationOf(order, 'completed', period)).then((c) => c.resource);
  const chartedGiven = (order: MedicationRequest) =>
    chartedGivenAt(order, { start: '2027-01-07T09:05:00.000Z', end: '2027-01-07T09:55:00.000Z' });
  async function takenBack(infusion: string): Promise<void> {
    const recorded = await service.fhir.read<Procedure>('Procedure', infusion);
    await postWebhook(
      service,
      JSON.stringify(await service.fhir.update<Procedure>({ ...recorded, status: 'entered-in-error' })),
    ).expect(202);
    await heard(infusion);
  }
  async function expectDoneByThePump(session: Task, order: MedicationRequest, given: MedicationAdministration) {
    const done = await service.fhir.read<Task>('Task', session.id!);
    expect([done.status, done.output?.[0]?.valueReference?.reference]).toEqual([
      'completed',
      `MedicationAdministration/${given.id}`,
    ]);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
  }

  it('a pump record charted after its follow-up left a session open, then the infusion in error: the session done as the pump recorded', async () => {
    const { enrolment, session, order, infusion } = await sessionLeftOpenByItsInfusion();
    // The eMAR charts the session given during it, then the infusion is taken back.
    const given = await chartedGiven(order);
    await takenBack(infusion);
    // Before, only an infusion that had left nothing behind had such sessions answered: this one stayed approved, its
    // order active after the drug went in (and not held with its plan, the pump having begun it).
    await expectDoneByThePump(session, order, given);
    const [issue] = (await issuesOf(enrolment.carePlanId)).filter((i) =>
      i.evidence?.some((e) => e.detail?.some((d) => d.reference === `Procedure/${infusion}`)),
    );
    expect(issue.detail).toMatch(
      /The pump recorded giving 1 approved session\(s\) during it that its follow-up had not answered/,
    );
  });

  it('the same, charted after the infusion was taken back: the sweep answers it', async () => {
    const { session, order, infusion } = await sessionLeftOpenByItsInfusion();
    await takenBack(infusion);
    const given = await chartedGiven(order);
    expect((await service.fhir.read<Task>('Task', session.id!)).status).not.toBe('completed');
    // The 15-minute sweep looks again at the infusions in error not yet resolved.
    const recheck = jest.spyOn(service.app.get(ContraindicationSweep), 'recheckFor');
    expect(await service.app.get(InfusionsInError).lookAgain()).toBeGreaterThanOrEqual(1);
    expect(recheck).toHaveBeenCalledWith(`CarePlan/${carePlanReferenceOf(session)!.split('/')[1]}`, expect.any(Date));
    await expectDoneByThePump(session, order, given);
    // Nothing changed since: no plan is rechecked (the sweep's own step rechecks every plan next).
    recheck.mockClear();
    expect(await service.app.get(InfusionsInError).lookAgain()).toBe(0);
    expect(recheck).not.toHaveBeenCalled();
    recheck.mockRestore();
  });

  /**
   * A session planned by an infusion since recorded in error, kept by a clinician (who overrides the issue), approved,
   * and given at the next infusion (its Procedure written, not reported yet). The follow-up of that infusion cannot tie
   * the session to it without the pump's record (the infusion that planned it is in error).
   */
  async function sessionKeptFromInfusionInError({ onEhrOrder = false } = {}) {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const onPlan = () => service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    const first = (await onPlan()).find((t) => actionOf(t) === 'infusion-session')!;
    await approvedSessionOrder(service, first);
    const wrong = await completeInfusion(service, enrolment, '2027-01-02T02:00:00.000Z');
    await reportInfusion(service, wrong);
    const session = (await onPlan()).find(
      (t) => actionOf(t) === 'next-induction-session' && t.reasonReference?.reference === `Procedure/${wrong}`,
    )!;
    // The infusion is taken back; the clinician keeps what it planned and overrides the issue.
    await takenBack(wrong);
    const [issue] = (await issuesOf(enrolment.carePlanId)).filter((i) =>
      i.evidence?.some((e) => e.detail?.some((d) => d.reference === `Procedure/${wrong}`)),
    );
    await overrideIssue(service, issue, 'Reviewed: the session stays as planned').expect(200);
    const kept = await service.fhir.read<Task>('Task', session.id!);
    const order = onEhrOrder ? await approvedOnOrderedInEhr(kept) : await approvedSessionOrder(service, kept);
    const infusion = await completeInfusion(service, enrolment, '2027-01-05T10:00:00.000Z');
    const given = () => chartedGivenAt(order, { start: '2027-01-05T09:05:00.000Z', end: '2027-01-05T09:55:00.000Z' });
    return { session, order, infusion, given };
  }

  /** A session approved on the order a prescriber wrote for it in the EHR (`onOrder`): that order. */
  async function approvedOnOrderedInEhr(session: Task): Promise<MedicationRequest> {
    const { ehrOrder } = await orderedInEhrFor(service, session);
    await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: session.meta!.versionId, onOrder: `MedicationRequest/${ehrOrder.id}` })
      .expect(200);
    return ehrOrder;
  }

  async function expectDoneByInfusion(session: Task, order: MedicationRequest, infusion: string) {
    const done = await service.fhir.read<Task>('Task', session.id!);
    expect([done.status, done.output?.[0]?.valueReference?.reference]).toEqual(['completed', `Procedure/${infusion}`]);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('completed');
  }

  // Before, it stayed approved with its order active after the drug went in (clinic day, seed 1702; approved on the EHR's
  // order, before session 42, as that order named no other).
  it.each([
    ['its order written here', false],
    ['approved on the order the EHR wrote for it', true],
  ])(
    'a session planned by an infusion since recorded in error (kept by a clinician; %s), its pump record charted after the next infusion was followed up: followed up again, done',
    async (_, onEhrOrder) => {
      const { session, order, infusion, given } = await sessionKeptFromInfusionInError({ onEhrOrder });
      // Its follow-up runs before the eMAR charts the pump's record.
      await reportInfusion(service, infusion);
      expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('ready');
      const record = await given();
      await postWebhook(service, JSON.stringify(record)).expect(202);
      await maintenanceJobDone(service, administrationRecordedJobId(record.id!), 'the pump’s record heard');
      expect(await followUpJobDone(service, infusion)).toMatchObject({ fulfilled: 1, ordersClosed: 1 });
      await expectDoneByInfusion(session, order, infusion);
    },
  );

  it('the same, the pump’s record heard while that follow-up is running (it read before the record): followed up again once it has finished', async () => {
    const { session, order, infusion, given } = await sessionKeptFromInfusionInError();
    // The follow-up's write is held back until the record is charted and its job has run once.
    const write = await tellInfusionHoldingItsWrite(service, proxy, infusion);
    const record = await given();
    await postWebhook(service, JSON.stringify(record)).expect(202);
    const maintenance = service.app.get<Queue>(getQueueToken(QUEUES.maintenance));
    await waitFor(async () => {
      const job = await maintenance.getJob(administrationRecordedJobId(record.id!));
      return !job || job.attemptsMade > 0;
    }, 'the pump’s record heard once');
    write.release();
    // The run that read before the record leaves the session open; the record's job, run again, has it followed up
    // again. Before, its ask was dropped while the follow-up ran, and the order stayed active after the drug went in.
    await maintenanceJobDone(service, administrationRecordedJobId(record.id!), 'the pump’s record heard again');
    expect(await followUpJobDone(service, infusion)).toMatchObject({ fulfilled: 1, ordersClosed: 1 });
    await expectDoneByInfusion(session, order, infusion);
  });

  it('a completed infusion notified again changes nothing', async () => {
    const { carePlanId, procedureId } = await infusedForCheck(service);
    const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
    await request(service.url)
      .put(`/webhooks/fhir/Procedure/${procedureId}`)
      .set('x-webhook-token', 'test-webhook-secret')
      .expect(202);
    await heard(procedureId);
    expect(await issuesOf(carePlanId)).toEqual([]);
    expect((await service.fhir.read<Procedure>('Procedure', procedureId)).meta?.versionId).toBe(
      procedure.meta?.versionId,
    );
  });
});
