import request from 'supertest';
import type {
  CarePlan,
  CommunicationRequest,
  DetectedIssue,
  MedicationAdministration,
  MedicationRequest,
  Patient,
  Provenance,
  Task,
} from '@medplum/fhirtypes';
import { orderKeySearch } from '@kc/task-states';
import { mintToken } from '@kc/auth';
import { bloodPressure, bodyWeight } from './fixtures/patient-data';
import { actionOf, completeInfusion, enrolPatient, followUpJobDone, followUpTasks, waitFor } from './support/clinic';
import { startTestService, TEST_JWT_SECRET, type TestService } from './support/test-service';
import { StoppedPlanSweep } from '../apps/worker/src/maintenance/stopped-plan-sweep';
import { OpenTasksReader } from '../apps/worker/src/maintenance/open-tasks';

describe('clinician review', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  /** A patient after one infusion: a post-infusion check and a next session, both awaiting approval. */
  async function patientWithFollowUps(plan = 'ketamine-low-dose-series', end = '2027-01-04T10:00:00.000Z') {
    const enrolment = await enrolPatient(service, plan);
    const procedureId = await completeInfusion(service, enrolment, end);
    await request(service.url)
      .post('/events/infusion-completed')
      .set(service.as('integration'))
      .send({ procedure: `Procedure/${procedureId}` })
      .expect(202);
    await followUpJobDone(service, procedureId);
    const tasks = await waitFor(async () => {
      const found = await followUpTasks(service, procedureId);
      return found.length === 2 && found;
    }, 'follow-ups');
    const byAction = Object.fromEntries(tasks.map((t) => [actionOf(t)!, t]));
    return { ...enrolment, check: byAction['post-infusion-check'], next: byAction['next-induction-session'] };
  }

  const clinician = () => service.as('clinician');

  it('the worklist lists awaiting tasks soonest first, filtered by patient, with paging', async () => {
    const p = await patientWithFollowUps();
    const res = await request(service.url).get('/worklist').query({ patient: p.patient }).set(clinician()).expect(200);
    // Instructions from $apply, then the check + next session; the first-session Task was fulfilled by the infusion.
    expect(res.body.total).toBe(3);
    const starts = res.body.items.map((i: { due: { start: string } }) => Date.parse(i.due.start));
    expect([...starts].sort((a, b) => a - b)).toEqual(starts);
    const paged = await request(service.url)
      .get('/worklist')
      .query({ patient: p.patient, count: 2 })
      .set(clinician())
      .expect(200);
    expect(paged.body.items).toHaveLength(2);
    expect(paged.body.next).toContain('cursor=');
    const second = await request(service.url)
      .get(`/worklist?${paged.body.next.split('?')[1]}`)
      .set(clinician())
      .expect(200);
    expect(second.body.items.map((i: { id: string }) => i.id)).not.toContain(paged.body.items[0].id);
  });

  it('filters by protocol and by due window', async () => {
    const p = await patientWithFollowUps('ketamine-monthly-maintenance', '2027-05-10T10:00:00.000Z');
    const monthly = await request(service.url)
      .get('/worklist')
      .query({ patient: p.patient, protocol: 'ketamine-monthly-maintenance' })
      .set(clinician())
      .expect(200);
    expect(monthly.body.total).toBeGreaterThan(0);
    const lowDose = await request(service.url)
      .get('/worklist')
      .query({ patient: p.patient, protocol: 'ketamine-low-dose-series' })
      .set(clinician())
      .expect(200);
    expect(lowDose.body.total).toBe(0);
    const afterInfusion = await request(service.url)
      .get('/worklist')
      .query({ patient: p.patient, 'due-after': '2027-05-10' })
      .set(clinician())
      .expect(200);
    expect(afterInfusion.body.items.map((i: { id: string }) => i.id).sort()).toEqual([p.check.id, p.next.id].sort());
  });

  it('approve: accepted/approved with an owner, and a Provenance naming the clinician', async () => {
    const p = await patientWithFollowUps();
    const res = await request(service.url)
      .post(`/tasks/${p.check.id}/$approve`)
      .set(clinician())
      .set('If-Match', `W/"${p.check.meta!.versionId}"`)
      .send({ owner: 'Practitioner/nurse-1' })
      .expect(200);
    expect(res.body).toMatchObject({
      status: 'ready',
      intent: 'plan',
      owner: { reference: 'Practitioner/nurse-1' },
    });
    expect(res.body.businessStatus.coding[0].code).toBe('approved');
    const provenance = await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${p.check.id}` });
    expect(provenance).toHaveLength(1);
    // Written with the decision, it names the version decided on.
    expect(provenance[0].entity).toEqual([
      { role: 'revision', what: { reference: `Task/${p.check.id}/_history/${p.check.meta!.versionId}` } },
    ]);
    expect(provenance[0].agent[0].who?.reference).toBe('Practitioner/dr-test');
    expect(provenance[0].activity?.text).toBe('approve');
    const worklist = await request(service.url)
      .get('/worklist')
      .query({ patient: p.patient })
      .set(clinician())
      .expect(200);
    expect(worklist.body.items.map((i: { id: string }) => i.id)).not.toContain(p.check.id);
  });

  it('the same decision sent twice (a retry after a lost answer, a double click): 200 both times, written once', async () => {
    const p = await patientWithFollowUps();
    const send = () =>
      request(service.url)
        .post(`/tasks/${p.next.id}/$approve`)
        .set(clinician())
        .send({ versionId: p.next.meta!.versionId });
    const [a, b] = await Promise.all([send(), send()]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const retried = await send();
    expect(retried.status).toBe(200);
    const now = await service.fhir.read<Task>('Task', p.next.id!);
    expect(retried.body.meta.versionId).toBe(now.meta?.versionId);
    expect(await service.fhir.searchAll('Provenance', { target: `Task/${p.next.id}` })).toHaveLength(1);
    const orders = await service.fhir.searchAll('MedicationRequest', {
      identifier: `https://ketamine-careplans.example/fhir/NamingSystem/order-key|Task/${p.next.id}`,
    });
    expect(orders).toHaveLength(p.next.focus ? 1 : 0);
    // A different decision on the version already decided is still a conflict.
    const reject = await request(service.url)
      .post(`/tasks/${p.next.id}/$reject`)
      .set(clinician())
      .send({ versionId: p.next.meta!.versionId, reason: 'changed my mind' });
    expect(reject.status).toBe(412);
  });

  it('sent again asking something else (another window, reason or owner) is not a retry: 412, and the first decision stands', async () => {
    const p = await patientWithFollowUps();
    const decide = (task: Task, decision: string, body: object) =>
      request(service.url)
        .post(`/tasks/${task.id}/$${decision}`)
        .set(clinician())
        .send({ versionId: task.meta!.versionId, ...body });
    const expectStale = async (res: request.Test) =>
      expect((await res.expect(412)).body.issue[0].details.text).toBe(
        'This task has changed since you loaded it; reload it and decide again',
      );
    // The next session may be 2-4 days after the infusion (Jan 6 - Jan 8).
    const first = { start: '2027-01-07T09:00:00Z', end: '2027-01-07T17:00:00Z' };
    const moved = (await decide(p.next, 'reschedule', first).expect(200)).body as Task;
    await expectStale(decide(p.next, 'reschedule', { start: '2027-01-08T08:00:00Z', end: '2027-01-08T09:00:00Z' }));
    // The same window, written another way, is the same request.
    const same = { start: '2027-01-07T09:00:00.000Z', end: '2027-01-07T17:00:00.000Z' };
    expect(((await decide(p.next, 'reschedule', same).expect(200)).body as Task).meta!.versionId).toBe(
      moved.meta!.versionId,
    );
    expect((await service.fhir.read<Task>('Task', p.next.id!)).restriction?.period).toEqual(same);

    const rejected = (await decide(p.check, 'reject', { reason: 'Seen in clinic' }).expect(200)).body as Task;
    await expectStale(decide(p.check, 'reject', { reason: 'Patient moved away' }));
    await decide(p.check, 'reject', { reason: 'Seen in clinic' }).expect(200);
    expect((await service.fhir.read<Task>('Task', p.check.id!)).statusReason?.text).toBe('Seen in clinic');
    expect(rejected.statusReason?.text).toBe('Seen in clinic');

    const other = await patientWithFollowUps();
    await decide(other.check, 'approve', { owner: 'Practitioner/dr-a' }).expect(200);
    await expectStale(decide(other.check, 'approve', { owner: 'Practitioner/dr-b' }));
    // Without an owner, the approval asks nothing the first one did not do.
    await decide(other.check, 'approve', {}).expect(200);
    expect((await service.fhir.read<Task>('Task', other.check.id!)).owner?.reference).toBe('Practitioner/dr-a');
    for (const task of [p.next, p.check, other.check])
      expect(await service.fhir.searchAll('Provenance', { target: `Task/${task.id}` })).toHaveLength(1);
  });

  it('two clinicians approving at once: exactly one wins, the other gets a conflict', async () => {
    const p = await patientWithFollowUps();
    const other = await mintToken(
      { sub: 'dr-other', roles: ['clinician'], fhirUser: 'Practitioner/dr-other', name: 'Dr Other' },
      { secret: TEST_JWT_SECRET },
    );
    const send = (authorization: Record<string, string>) =>
      request(service.url)
        .post(`/tasks/${p.next.id}/$approve`)
        .set(authorization)
        .send({ versionId: p.next.meta!.versionId });
    const [a, b] = await Promise.all([send(clinician()), send({ Authorization: `Bearer ${other}` })]);
    const statuses = [a.status, b.status];
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    const loser = a.status === 200 ? b : a;
    expect([409, 412]).toContain(loser.status);
    expect(loser.body.issue[0].details.text).toMatch(/changed|decided/i);
    const winner = a.status === 200 ? a : b;
    expect(await service.fhir.searchAll('Provenance', { target: `Task/${p.next.id}` })).toHaveLength(1);
    expect((await service.fhir.read<Task>('Task', p.next.id!)).meta?.versionId).toBe(winner.body.meta.versionId);
  });

  it('a decision needs the reviewed version; a stale one is refused with 412', async () => {
    const p = await patientWithFollowUps();
    const missing = await request(service.url)
      .post(`/tasks/${p.check.id}/$approve`)
      .set(clinician())
      .send({})
      .expect(428);
    expect(missing.body.resourceType).toBe('OperationOutcome');
    await request(service.url)
      .post(`/tasks/${p.check.id}/$reschedule`)
      .set(clinician())
      .send({
        versionId: p.check.meta!.versionId,
        start: p.check.restriction!.period!.start,
        end: p.check.restriction!.period!.start,
      })
      .expect(200);
    const stale = await request(service.url)
      .post(`/tasks/${p.check.id}/$approve`)
      .set(clinician())
      .send({ versionId: p.check.meta!.versionId })
      .expect(412);
    // In words for the clinician on the page; the reference for the integrator.
    expect(stale.body.issue[0].details.text).toBe(
      'This task has changed since you loaded it; reload it and decide again',
    );
    expect(stale.body.issue[0].expression).toEqual([`Task/${p.check.id}`]);
    expect(stale.body.issue[0].diagnostics).toContain(`the decision was taken on version ${p.check.meta!.versionId}`);
  });

  it('reject needs a reason and records it', async () => {
    const p = await patientWithFollowUps();
    await request(service.url)
      .post(`/tasks/${p.next.id}/$reject`)
      .set(clinician())
      .send({ versionId: p.next.meta!.versionId })
      .expect(400);
    const res = await request(service.url)
      .post(`/tasks/${p.next.id}/$reject`)
      .set(clinician())
      .send({ versionId: p.next.meta!.versionId, reason: 'Lasting relief; session not needed' })
      .expect(200);
    expect(res.body).toMatchObject({
      status: 'rejected',
      statusReason: { text: 'Lasting relief; session not needed' },
    });
    const again = await request(service.url)
      .post(`/tasks/${p.next.id}/$approve`)
      .set(clinician())
      .send({ versionId: res.body.meta.versionId })
      .expect(409);
    expect(again.body.issue[0].details.text).toMatch(/Cannot approve a Task that is rejected/);
  });

  it('reschedule stays within the protocol window; outside it is a 422 naming the allowed range', async () => {
    const p = await patientWithFollowUps();
    // The next low-dose session may be 2-4 days after the infusion (Jan 6 - Jan 8).
    const inside = await request(service.url)
      .post(`/tasks/${p.next.id}/$reschedule`)
      .set(clinician())
      .send({ versionId: p.next.meta!.versionId, start: '2027-01-07T09:00:00Z', end: '2027-01-07T17:00:00Z' })
      .expect(200);
    expect(inside.body.restriction.period).toEqual({
      start: '2027-01-07T09:00:00.000Z',
      end: '2027-01-07T17:00:00.000Z',
    });
    const outside = await request(service.url)
      .post(`/tasks/${p.next.id}/$reschedule`)
      .set(clinician())
      .send({ versionId: inside.body.meta.versionId, start: '2027-01-09T09:00:00Z', end: '2027-01-09T17:00:00Z' })
      .expect(422);
    expect(outside.body.issue[0].details.text).toContain(
      "within the protocol's window 2027-01-06 10:00 .. 2027-01-08 10:00 (UTC)",
    );
    await request(service.url)
      .post(`/tasks/${p.next.id}/$reschedule`)
      .set(clinician())
      .send({ versionId: inside.body.meta.versionId, start: 'tomorrow', end: 'later' })
      .expect(400);
  });

  it('a stopped (revoked) or paused (on-hold) plan: no approval, reschedule or order; its Tasks can still be rejected; its post-infusion check goes on', async () => {
    const p = await patientWithFollowUps();
    const carePlan = await service.fhir.read<CarePlan>('CarePlan', p.carePlanId);
    await service.fhir.update<CarePlan>({ ...carePlan, status: 'revoked' });
    const refused = await request(service.url)
      .post(`/tasks/${p.next.id}/$approve`)
      .set(clinician())
      .set('If-Match', `W/"${p.next.meta!.versionId}"`)
      .send({})
      .expect(409);
    expect(refused.body.issue[0].details.text).toBe(
      'This task cannot be approved or rescheduled: its care plan was stopped (revoked). It can still be rejected.',
    );
    await request(service.url)
      .post(`/tasks/${p.next.id}/$reschedule`)
      .set(clinician())
      .send({ versionId: p.next.meta!.versionId, start: '2027-01-08T09:00:00Z', end: '2027-01-08T12:00:00Z' })
      .expect(409);
    // The infusion was given: its check is due whatever became of the course (since session 52; refused before).
    const bulk = await request(service.url)
      .post('/tasks/$bulk-approve')
      .set(clinician())
      .send({ tasks: [{ id: p.check.id, versionId: p.check.meta!.versionId }] })
      .expect(200);
    expect(bulk.body.results).toEqual([expect.objectContaining({ id: p.check.id, result: 'approved' })]);
    expect(await service.fhir.read<Task>('Task', p.check.id!)).toMatchObject({ status: 'ready' });
    expect(await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${p.check.id}` })).toHaveLength(1);
    // Nothing was decided of the session: no order, no Provenance, the Task unchanged.
    const orders = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', { subject: p.patient });
    expect(orders.filter((o) => o.status === 'active')).toEqual([]);
    expect(await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${p.next.id}` })).toEqual([]);
    expect((await service.fhir.read<Task>('Task', p.next.id!)).meta!.versionId).toBe(p.next.meta!.versionId);
    await request(service.url)
      .post(`/tasks/${p.next.id}/$reject`)
      .set(clinician())
      .send({ versionId: p.next.meta!.versionId, reason: 'Treatment stopped' })
      .expect(200);

    const paused = await patientWithFollowUps();
    const pausedPlan = await service.fhir.read<CarePlan>('CarePlan', paused.carePlanId);
    await service.fhir.update<CarePlan>({ ...pausedPlan, status: 'on-hold' });
    const onHold = await request(service.url)
      .post(`/tasks/${paused.next.id}/$approve`)
      .set(clinician())
      .set('If-Match', `W/"${paused.next.meta!.versionId}"`)
      .send({})
      .expect(409);
    expect(onHold.body.issue[0].details.text).toMatch(/its care plan is on hold/);
    await request(service.url)
      .post(`/tasks/${paused.check.id}/$approve`)
      .set(clinician())
      .set('If-Match', `W/"${paused.check.meta!.versionId}"`)
      .send({})
      .expect(200);
  });

  it("the sweep withdraws a stopped plan's Tasks awaiting approval and cancels their proposals; paused plans keep theirs", async () => {
    const stopped = await patientWithFollowUps();
    // The check is approved before the plan is stopped: it stays, its infusion given (withdrawn in sessions 28-51).
    await request(service.url)
      .post(`/tasks/${stopped.check.id}/$approve`)
      .set(clinician())
      .set('If-Match', `W/"${stopped.check.meta!.versionId}"`)
      .send({})
      .expect(200);
    const paused = await patientWithFollowUps();
    for (const [p, status] of [
      [stopped, 'revoked'],
      [paused, 'on-hold'],
    ] as const) {
      const carePlan = await service.fhir.read<CarePlan>('CarePlan', p.carePlanId);
      await service.fhir.update<CarePlan>({ ...carePlan, status });
    }
    const inWorklist = async (taskId: string) =>
      (await request(service.url).get('/worklist').set(clinician()).query({ count: 100 }).expect(200)).body.items.some(
        (i: { id: string }) => i.id === taskId,
      );
    expect(await inWorklist(stopped.next.id!)).toBe(true);

    const awaiting = await service.fhir.searchAll<Task>('Task', {
      'based-on': `CarePlan/${stopped.carePlanId}`,
      status: 'draft',
    });
    expect(awaiting.map((t) => t.id)).toContain(stopped.next.id);
    const result = await service.app.get(StoppedPlanSweep).sweep();
    // Other tests' stopped plans in this store are swept too.
    expect(result.withdrawn).toBeGreaterThanOrEqual(awaiting.length);
    for (const t of awaiting) expect((await service.fhir.read<Task>('Task', t.id!)).status).toBe('cancelled');
    const next = await service.fhir.read<Task>('Task', stopped.next.id!);
    expect(next).toMatchObject({
      status: 'cancelled',
      businessStatus: { coding: [expect.objectContaining({ code: 'withdrawn' })] },
      statusReason: { text: 'Withdrawn: its care plan was stopped (revoked)' },
    });
    const proposal = await service.fhir.read<MedicationRequest>(
      'MedicationRequest',
      stopped.next.focus!.reference!.split('/')[1],
    );
    expect(proposal).toMatchObject({
      status: 'cancelled',
      statusReason: { text: 'Withdrawn: its care plan was stopped (revoked)' },
    });
    expect(await inWorklist(stopped.next.id!)).toBe(false);
    // An EHR reading Provenance sees who withdrew it (the service, not a clinician), from which version, and why.
    const [provenance] = await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${stopped.next.id}` });
    expect(provenance).toMatchObject({
      activity: { text: 'withdraw' },
      reason: [{ text: 'Withdrawn: its care plan was stopped (revoked)' }],
      entity: [
        { role: 'revision', what: { reference: `Task/${stopped.next.id}/_history/${stopped.next.meta!.versionId}` } },
      ],
      agent: [{ who: { display: 'ketamine-careplans (automatic)' } }],
    });
    expect(provenance.target.map((t) => t.reference).sort()).toEqual(
      [`Task/${stopped.next.id}`, stopped.next.focus!.reference!].sort(),
    );
    expect(await service.fhir.read<Task>('Task', stopped.check.id!)).toMatchObject({
      status: 'ready',
      businessStatus: { coding: [expect.objectContaining({ code: 'approved' })] },
    });
    // So does its reminder to the patient (the one-week check).
    const reminders = await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
      'based-on': `CarePlan/${stopped.carePlanId}`,
    });
    expect(reminders.filter((r) => r.about?.some((a) => a.reference === `Task/${stopped.check.id}`))).toEqual([
      expect.objectContaining({ status: 'active' }),
    ]);
    for (const t of [paused.check, paused.next])
      expect((await service.fhir.read<Task>('Task', t.id!)).meta!.versionId).toBe(t.meta!.versionId);
    // Nothing left to do the next time.
    expect((await service.app.get(StoppedPlanSweep).sweep()).withdrawn).toBe(0);
  });

  it("a Task the EHR deletes between the sweep's read and its write: that one skipped, the others withdrawn, the sweep not failed", async () => {
    const stopped = await patientWithFollowUps();
    const carePlan = await service.fhir.read<CarePlan>('CarePlan', stopped.carePlanId);
    await service.fhir.update<CarePlan>({ ...carePlan, status: 'revoked' });
    const open = await service.app.get(OpenTasksReader).read({ 'based-on': `CarePlan/${stopped.carePlanId}` });
    expect(open.awaiting.map((t) => t.id)).toEqual(expect.arrayContaining([stopped.check.id, stopped.next.id]));
    // Deleted after the read (before, its 404 failed the whole sweep: every later step waited for the next run).
    expect((await fetch(`${service.config.fhirBaseUrl}/Task/${stopped.check.id}`, { method: 'DELETE' })).ok).toBe(true);
    const { withdrawn } = await service.app.get(StoppedPlanSweep).sweep(new Date(), open);
    expect(withdrawn).toBe(open.awaiting.length - 1);
    expect((await service.fhir.read<Task>('Task', stopped.next.id!)).status).toBe('cancelled');
  });

  it("a stopped plan's approved session: its order cancelled and its reminders revoked, unless the pump has begun it", async () => {
    const approveSession = async (task: Task) =>
      request(service.url)
        .post(`/tasks/${task.id}/$approve`)
        .set(clinician())
        .send({ versionId: task.meta!.versionId })
        .expect(200);
    const orderOf = async (task: Task) =>
      (
        await service.fhir.searchAll<MedicationRequest>('MedicationRequest', { identifier: orderKeySearch(task.id!) })
      )[0];
    const remindersOf = async (carePlanId: string, task: Task) =>
      (
        await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
          'based-on': `CarePlan/${carePlanId}`,
        })
      ).filter((r) => r.about?.some((a) => a.reference === `Task/${task.id}`));
    const onToDoList = async (p: { patient: string }) =>
      (
        (await request(service.url).get('/to-do/view').query({ patient: p.patient }).set(clinician()).expect(200)).body
          .items as { id: string }[]
      ).map((i) => i.id);
    const stopped = await patientWithFollowUps();
    const begun = await patientWithFollowUps();
    await approveSession(stopped.next);
    await approveSession(begun.next);
    expect(await onToDoList(stopped)).toContain(stopped.next.id);
    const order = await orderOf(stopped.next);
    expect(order.status).toBe('active');
    const pending = (await remindersOf(stopped.carePlanId, stopped.next)).filter((r) => r.status === 'active');
    expect(pending.length).toBeGreaterThan(0);
    // The other session is under way at the pump when its plan is entered in error.
    const running = await orderOf(begun.next);
    await service.fhir.create<MedicationAdministration>({
      resourceType: 'MedicationAdministration',
      status: 'in-progress',
      medicationCodeableConcept: running.medicationCodeableConcept,
      subject: { reference: begun.patient },
      request: { reference: `MedicationRequest/${running.id}` },
      effectivePeriod: { start: new Date().toISOString() },
    });
    for (const [p, status] of [
      [stopped, 'revoked'],
      [begun, 'entered-in-error'],
    ] as const) {
      const carePlan = await service.fhir.read<CarePlan>('CarePlan', p.carePlanId);
      await service.fhir.update<CarePlan>({ ...carePlan, status });
    }

    await service.app.get(StoppedPlanSweep).sweep();

    const why = 'Withdrawn: its care plan was stopped (revoked)';
    expect(await service.fhir.read<Task>('Task', stopped.next.id!)).toMatchObject({
      status: 'cancelled',
      businessStatus: { coding: [expect.objectContaining({ code: 'withdrawn' })] },
      statusReason: { text: why },
    });
    // An EHR reading MedicationRequest.status finds no ketamine order to give under the stopped plan.
    expect(await orderOf(stopped.next)).toMatchObject({ status: 'cancelled', statusReason: { text: why } });
    for (const r of await remindersOf(stopped.carePlanId, stopped.next))
      if (pending.some((p) => p.id === r.id))
        expect(r).toMatchObject({ status: 'revoked', statusReason: { text: why } });
    const provenance = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${stopped.next.id}` })
    ).find((p) => p.activity?.text === 'withdraw')!;
    expect(provenance.target.map((t) => t.reference)).toEqual(
      expect.arrayContaining([
        `Task/${stopped.next.id}`,
        `MedicationRequest/${order.id}`,
        ...pending.map((r) => `CommunicationRequest/${r.id}`),
      ]),
    );
    expect(provenance.agent[0].who?.display).toBe('ketamine-careplans (automatic)');
    // Gone from the to-do list.
    expect(await onToDoList(stopped)).not.toContain(stopped.next.id);
    // Begun at the pump: left to its infusion, which closes the order.
    expect((await service.fhir.read<Task>('Task', begun.next.id!)).status).toBe('ready');
    expect((await orderOf(begun.next)).status).toBe('active');
  });

  it('bulk approve reports each task, approving the current ones and refusing the stale one', async () => {
    const p = await patientWithFollowUps();
    const res = await request(service.url)
      .post('/tasks/$bulk-approve')
      .set(clinician())
      .send({
        tasks: [
          { id: p.check.id, versionId: p.check.meta!.versionId },
          { id: p.next.id, versionId: 'stale-version' },
        ],
      })
      .expect(200);
    expect(res.body.approved).toBe(1);
    expect(res.body.results).toEqual([
      expect.objectContaining({ id: p.check.id, result: 'approved' }),
      expect.objectContaining({ id: p.next.id, result: 'refused', status: 412 }),
    ]);
  });

  it('activating a contraindicated plan needs an override with a reason, recorded on the DetectedIssue', async () => {
    const { resource } = await service.fhir.create<Patient>({ resourceType: 'Patient' });
    const patient = `Patient/${resource.id}`;
    await service.fhir.create(bodyWeight(70, '2026-11-01T09:00:00Z', patient));
    await service.fhir.create(bloodPressure(190, 115, '2026-11-01T09:00:00Z', patient));
    const applied = await request(service.url)
      .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
      .set(clinician())
      .send({
        resourceType: 'Parameters',
        parameter: [
          { name: 'subject', valueString: patient },
          { name: 'persist', valueBoolean: true },
        ],
      })
      .expect(200);
    const carePlan = applied.body as CarePlan;
    const blocked = await request(service.url)
      .post(`/careplans/${carePlan.id}/$activate`)
      .set(clinician())
      .send({ versionId: carePlan.meta!.versionId })
      .expect(422);
    expect(blocked.body.issue[0].details.text).toMatch(/contraindication/);
    await request(service.url)
      .post(`/careplans/${carePlan.id}/$activate`)
      .set(clinician())
      .send({ versionId: carePlan.meta!.versionId, override: true })
      .expect(400);
    const activated = await request(service.url)
      .post(`/careplans/${carePlan.id}/$activate`)
      .set(clinician())
      .send({ versionId: carePlan.meta!.versionId, override: true, reason: 'BP rechecked at 142/88 on arrival' })
      .expect(200);
    expect(activated.body.status).toBe('active');
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlan.id}`,
    });
    expect(issue.mitigation?.[0].action.text).toBe('Clinician override: BP rechecked at 142/88 on arrival');
    expect(issue.mitigation?.[0].author?.reference).toBe('Practitioner/dr-test');
    // The override is a decision of its own, with a Provenance naming who.
    const provenance = await service.fhir.searchAll<Provenance>('Provenance', {
      target: `DetectedIssue/${issue.id}`,
    });
    expect(provenance.map((p) => [p.activity?.text, p.agent[0].who?.reference])).toEqual([
      ['override contraindication', 'Practitioner/dr-test'],
    ]);
    // The actions the contraindication held back are now proposed, listed once on the CarePlan, awaiting approval.
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlan.id}` });
    expect(tasks.map((t) => t.status)).toEqual(['draft', 'draft']);
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlan.id!);
    expect(plan.activity?.map((a) => a.reference?.reference).sort()).toEqual(tasks.map((t) => `Task/${t.id}`).sort());
  });

  describe('authentication and roles', () => {
    it('401 without a token, with a bad signature, or expired; 403 for the wrong role', async () => {
      await request(service.url).get('/worklist').expect(401);
      const forged = await mintToken({ sub: 'x', roles: ['clinician'] }, { secret: 'not-the-secret' });
      await request(service.url).get('/worklist').set('Authorization', `Bearer ${forged}`).expect(401);
      const expired = await mintToken(
        { sub: 'x', roles: ['clinician'] },
        { secret: TEST_JWT_SECRET, expiresIn: '-1m' },
      );
      await request(service.url).get('/worklist').set('Authorization', `Bearer ${expired}`).expect(401);
      const noRole = await mintToken({ sub: 'x', roles: [] }, { secret: TEST_JWT_SECRET });
      const res = await request(service.url).get('/worklist').set('Authorization', `Bearer ${noRole}`).expect(403);
      expect(res.body.resourceType).toBe('OperationOutcome');
      await request(service.url)
        .post('/tasks/x/$approve')
        .set(service.as('integration'))
        .send({ versionId: '1' })
        .expect(403);
      await request(service.url).get('/worklist').set(service.as('admin')).expect(200);
    });
  });
});
