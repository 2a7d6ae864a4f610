import request from 'supertest';
import type { Job } from 'bullmq';
import type { CarePlan, MedicationRequest, Provenance, Task } from '@medplum/fhirtypes';
import { InfusionEventsProducer, JOBS } from '@kc/queue';
import { OPEN_STATUS_SEARCH, orderKeySearch } from '@kc/task-states';
import { MaintenanceProcessor } from '../apps/worker/src/maintenance/maintenance.processor';
import { PlanChanges } from '../apps/worker/src/maintenance/plan-changes';
import {
  actionOf,
  approveFirstSession,
  completeInfusion,
  enrolPatient,
  followUpJobDone,
  followUpTasks,
  reportInfusion,
} from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

/**
 * A plan the EHR gave an end date (`CarePlan.period.end`: the course of treatment the clinic decided on ends then).
 * Before session 48 the date was not read: sessions went on being proposed, and could be approved, after it.
 */
describe('a care plan with an end date', () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService();
  }, 60_000);
  afterAll(() => service.stop());

  const endedOn = async (carePlanId: string, end: string) =>
    service.fhir.update<CarePlan>({
      ...(await service.fhir.read<CarePlan>('CarePlan', carePlanId)),
      period: { start: '2027-01-01', end },
    });

  it('proposes no session after it; the last infusion’s check still', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    await endedOn(enrolment.carePlanId, '2027-01-05');
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    expect(await reportInfusion(service, procedureId)).toMatchObject({
      status: 'created',
      afterPlanEnd: ['next-induction-session'],
    });
    expect((await followUpTasks(service, procedureId)).map(actionOf)).toEqual(['post-infusion-check']);
  });

  it('refuses to approve a session whose window begins after it (409, in words), and a reject still works', async () => {
    const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const session = (await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` })).find(
      (t) => actionOf(t) === 'infusion-session',
    )!;
    await endedOn(carePlanId, '2027-01-01');
    const refused = await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: session.meta!.versionId })
      .expect(409);
    expect(refused.body.issue[0].details.text).toBe(
      'Its care plan ends on 2027-01-01 (set in the EHR): this session, from 2027-01-02, would be after it. Extend the plan in the EHR to approve it, or reject this task.',
    );
    await request(service.url)
      .post(`/tasks/${session.id}/$reject`)
      .set(service.as('clinician'))
      .send({ versionId: session.meta!.versionId, reason: 'Course ended' })
      .expect(200);
  });

  it('a session approved before the end was set, due after it: withdrawn with its order when the plan’s change is heard', async () => {
    const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const session = await approveFirstSession(service, carePlanId);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    await endedOn(carePlanId, '2027-01-01');
    // What the CarePlan's notification runs (the sweep does the same every 15 minutes).
    await service.app.get(PlanChanges).planChanged(carePlanId);
    const withdrawn = await service.fhir.read<Task>('Task', session.id!);
    expect([withdrawn.status, withdrawn.statusReason?.text]).toEqual([
      'cancelled',
      'Withdrawn: it would begin after its plan ends (2027-01-01)',
    ]);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('cancelled');
    // The instructions due on the plan's last day are not a session: left as they were.
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    expect(tasks.find((t) => actionOf(t) === 'patient-instructions')?.status).toBe('draft');
  });

  // Since session 50; before, an extended course had nothing to approve: what the old end kept out stayed out.
  describe('extended in the EHR (its end moved later, or removed)', () => {
    const endRemoved = async (carePlanId: string) => {
      const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
      await service.fhir.update<CarePlan>({ ...plan, period: { start: plan.period?.start } });
      // What the CarePlan's notification runs.
      return service.app.get(PlanChanges).planChanged(carePlanId);
    };

    it('a session withdrawn for the old end is proposed again, awaiting approval, once', async () => {
      const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
      const session = await approveFirstSession(service, carePlanId);
      await endedOn(carePlanId, '2027-01-01');
      await service.app.get(PlanChanges).planChanged(carePlanId);
      expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('cancelled');
      expect(await endRemoved(carePlanId)).toMatchObject({ proposedAgain: 1 });
      const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
      const again = tasks.filter((t) => actionOf(t) === 'infusion-session' && t.status === 'draft');
      expect(again).toHaveLength(1);
      expect(again[0].statusReason?.text).toBe("Proposed again: its plan's end was removed in the EHR");
      expect(again[0].restriction?.period).toEqual(session.restriction?.period);
      const proposal = await service.fhir.read<MedicationRequest>(
        'MedicationRequest',
        again[0].focus!.reference!.split('/')[1],
      );
      expect(proposal.status).toBe('draft');
      // Listed on the plan, a Provenance naming the service; the withdrawn one stays as it was.
      const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
      expect(plan.activity?.map((a) => a.reference?.reference)).toContain(`Task/${again[0].id}`);
      const provenances = await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${again[0].id}` });
      expect(provenances.map((p) => p.activity?.text)).toEqual(['propose again for the plan’s new end']);
      expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('cancelled');
      // Heard again: nothing more; nor once the one proposed again is closed (clinic day seed 3254: before, the
      // withdrawn one was proposed again each time its replacement was closed).
      expect(await service.app.get(PlanChanges).planChanged(carePlanId)).toMatchObject({ proposedAgain: 0 });
      await service.fhir.update<Task>({ ...again[0], status: 'completed' });
      expect(await service.app.get(PlanChanges).planChanged(carePlanId)).toMatchObject({ proposedAgain: 0 });
    });

    it('the session its infusion’s follow-up left out for the old end is proposed', async () => {
      const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
      await approveFirstSession(service, enrolment.carePlanId);
      await endedOn(enrolment.carePlanId, '2027-01-05');
      const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
      expect(await reportInfusion(service, procedureId)).toMatchObject({ afterPlanEnd: ['next-induction-session'] });
      await endRemoved(enrolment.carePlanId);
      await followUpJobDone(service, procedureId);
      expect((await followUpTasks(service, procedureId)).map(actionOf).sort()).toEqual([
        'next-induction-session',
        'post-infusion-check',
      ]);
    });
  });
});

/**
 * A plan whose end has passed: completed by the service once nothing is open under it, so an EHR reading
 * CarePlan.status alone reads the course over; active again when the EHR moves the end later. Before session 50 such a
 * plan stayed active for ever (its status was left to the EHR).
 */
describe('a care plan past its end', () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService();
  }, 60_000);
  afterAll(() => service.stop());

  const DAY_MS = 86_400_000;
  /** A clinic day `n` days from today (negative: before), as a date alone. */
  const day = (n: number) => new Date(Date.now() + n * DAY_MS).toISOString().slice(0, 10);
  const plan = (id: string) => service.fhir.read<CarePlan>('CarePlan', id);
  /** The EHR sets the plan's period, If-Match on what it read. */
  const periodSetInEhr = async (id: string, period: CarePlan['period']) => {
    const read = await plan(id);
    await service.fhir.update<CarePlan>({ ...read, period }, { ifMatch: read.meta!.versionId });
  };
  /** Enrolled, and the plan activated by a clinician (a draft plan past its end is left as it is). */
  const enrolledActive = async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    await request(service.url)
      .post(`/careplans/${enrolment.carePlanId}/$activate`)
      .set(service.as('clinician'))
      .send({ versionId: (await plan(enrolment.carePlanId)).meta!.versionId })
      .expect(200);
    return enrolment;
  };
  /** The 15-minute sweep, run at once as its schedule runs it. */
  const sweep = async () => {
    const job = { name: JOBS.overdueSweep, updateProgress: () => Promise.resolve() } as unknown as Job;
    return (await service.app.get(MaintenanceProcessor).process(job)) as { plansCompletedAtTheirEnd: number };
  };
  /** The EHR closes every Task open under the plan (done there, or cancelled). */
  const tasksClosedInEhr = async (id: string) => {
    for (const task of await service.fhir.searchAll<Task>('Task', {
      'based-on': `CarePlan/${id}`,
      status: OPEN_STATUS_SEARCH,
    }))
      await service.fhir.update<Task>({ ...task, status: 'cancelled' });
  };
  const provenancesOf = async (id: string) =>
    (await service.fhir.searchAll<Provenance>('Provenance', { target: `CarePlan/${id}` })).map((p) => p.activity?.text);

  it('is completed by the sweep once nothing is open under it (tagged, noted, a Provenance), not before', async () => {
    const { carePlanId, patient } = await enrolledActive();
    await periodSetInEhr(carePlanId, { start: day(-30), end: day(-2) });
    // Its instructions and first session are still open: a clinician closes them first. The page says so.
    await sweep();
    expect((await plan(carePlanId)).status).toBe('active');
    const planOnPage = async () =>
      (
        await request(service.url)
          .get(`/patients/${patient.split('/')[1]}/timeline`)
          .set(service.as('clinician'))
          .expect(200)
      ).body.carePlans[0] as { status: string; note?: string };
    expect(await planOnPage()).toMatchObject({
      status: 'active',
      note: `Its end (${day(-2)}, set in the EHR) has passed: it is completed once nothing under it is still open.`,
    });
    await tasksClosedInEhr(carePlanId);
    expect((await sweep()).plansCompletedAtTheirEnd).toBeGreaterThanOrEqual(1);
    const completed = await plan(carePlanId);
    expect(completed.status).toBe('completed');
    expect(completed.meta?.tag?.map((t) => t.code)).toContain('completed-at-its-end');
    expect(completed.note?.at(-1)?.text).toMatch(/^Completed by ketamine-careplans: its end date passed/);
    expect(await provenancesOf(carePlanId)).toContain('complete the plan at its end');
    expect((await planOnPage()).note).toMatch(/^Completed by ketamine-careplans/);
    // Once: the next sweep changes nothing.
    await sweep();
    expect((await plan(carePlanId)).meta?.versionId).toBe(completed.meta?.versionId);
  });

  it('is left active while its end is to come, and so is a plan the EHR wrote itself', async () => {
    const { carePlanId, patient } = await enrolledActive();
    await periodSetInEhr(carePlanId, { start: day(-30), end: day(3) });
    await tasksClosedInEhr(carePlanId);
    const { resource: ehrs } = await service.fhir.create<CarePlan>({
      resourceType: 'CarePlan',
      status: 'active',
      intent: 'plan',
      subject: { reference: patient },
      period: { start: day(-60), end: day(-5) },
    });
    await sweep();
    expect((await plan(carePlanId)).status).toBe('active');
    expect((await plan(ehrs.id!)).status).toBe('active');
  });

  it('is active again when the EHR moves its end later (its change heard), and completed again when that passes', async () => {
    const { carePlanId } = await enrolledActive();
    await periodSetInEhr(carePlanId, { start: day(-30), end: day(-1) });
    await tasksClosedInEhr(carePlanId);
    // What the CarePlan's notification runs.
    expect(await service.app.get(PlanChanges).planChanged(carePlanId)).toMatchObject({ completed: 1 });
    expect((await plan(carePlanId)).status).toBe('completed');
    await periodSetInEhr(carePlanId, { start: day(-30), end: day(30) });
    expect(await service.app.get(PlanChanges).planChanged(carePlanId)).toMatchObject({ reopened: 1 });
    const reopened = await plan(carePlanId);
    expect(reopened.status).toBe('active');
    expect(reopened.meta?.tag?.map((t) => t.code) ?? []).not.toContain('completed-at-its-end');
    expect(reopened.note?.at(-1)?.text).toMatch(/^Active again: the EHR moved its end date/);
    expect(await provenancesOf(carePlanId)).toContain('reopen the plan for its new end');
    // Its new end passes (the sweep's clock moved on): completed again.
    await service.app.get(PlanChanges).planChanged(carePlanId, new Date(Date.now() + 32 * DAY_MS));
    expect((await plan(carePlanId)).status).toBe('completed');
  });

  // Since session 51; before, the sweep made it active again and proposed nothing: only the plan's notification did.
  it('extended in the EHR with no notification: the sweep makes it active again and proposes what its old end kept out', async () => {
    const { carePlanId } = await enrolledActive();
    const session = await approveFirstSession(service, carePlanId);
    await periodSetInEhr(carePlanId, { start: day(-30), end: day(-2) });
    await sweep();
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('cancelled');
    await tasksClosedInEhr(carePlanId);
    expect((await sweep()).plansCompletedAtTheirEnd).toBeGreaterThanOrEqual(1);
    expect((await plan(carePlanId)).status).toBe('completed');
    await periodSetInEhr(carePlanId, { start: day(-30) });
    expect(await sweep()).toMatchObject({ plansReopenedForTheirNewEnd: 1, proposedAgainForNewEnd: 1 });
    expect((await plan(carePlanId)).status).toBe('active');
    const again = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}`, status: 'draft' });
    expect(again.map((t) => [actionOf(t), t.statusReason?.text])).toEqual([
      ['infusion-session', "Proposed again: its plan's end was removed in the EHR"],
    ]);
    expect(await sweep()).toMatchObject({ plansReopenedForTheirNewEnd: 0, proposedAgainForNewEnd: 0 });
  });

  // Since session 53; before, only the plan's notification proposed them: an active plan extended with nothing notified
  // had nothing to approve until its new end.
  it('an active plan extended in the EHR with no notification: the sweep proposes what its old end kept out, once', async () => {
    const { carePlanId } = await enrolledActive();
    const session = await approveFirstSession(service, carePlanId);
    // Its end set in the EHR before the session (2027-01-02), not passed yet: the plan stays active.
    await periodSetInEhr(carePlanId, { start: day(-30), end: day(3) });
    await sweep();
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('cancelled');
    expect((await plan(carePlanId)).status).toBe('active');
    await periodSetInEhr(carePlanId, { start: day(-30) });
    expect(await sweep()).toMatchObject({ plansReopenedForTheirNewEnd: 0, proposedAgainForNewEnd: 1 });
    const drafts = await service.fhir.searchAll<Task>('Task', {
      'based-on': `CarePlan/${carePlanId}`,
      status: 'draft',
    });
    const again = drafts.filter((t) => actionOf(t) === 'infusion-session');
    expect(again.map((t) => [t.statusReason?.text, t.restriction?.period])).toEqual([
      ["Proposed again: its plan's end was removed in the EHR", session.restriction?.period],
    ]);
    expect(await sweep()).toMatchObject({ proposedAgainForNewEnd: 0 });
  });

  // Since session 51; before, the infusion was ignored (its plan completed), and the patient had no post-infusion check.
  it('an infusion charted under it once completed: active again for its check, completed again once that is closed', async () => {
    const enrolment = await enrolledActive();
    const { carePlanId } = enrolment;
    await periodSetInEhr(carePlanId, { start: day(-30), end: day(-2) });
    await tasksClosedInEhr(carePlanId);
    expect(await service.app.get(PlanChanges).planChanged(carePlanId)).toMatchObject({ completed: 1 });
    // Given on its last day from an order of the EHR's own, charted now.
    const procedureId = await completeInfusion(service, enrolment, `${day(-2)}T10:00:00.000Z`);
    expect(await reportInfusion(service, procedureId)).toMatchObject({
      status: 'created',
      afterPlanEnd: ['next-induction-session'],
    });
    expect((await followUpTasks(service, procedureId)).map(actionOf)).toEqual(['post-infusion-check']);
    const reopened = await plan(carePlanId);
    expect(reopened.status).toBe('active');
    expect(reopened.meta?.tag?.map((t) => t.code) ?? []).not.toContain('completed-at-its-end');
    expect(reopened.note?.at(-1)?.text).toMatch(/^Active again: an infusion was charted under it/);
    const [check] = await followUpTasks(service, procedureId);
    expect(reopened.activity?.map((a) => a.reference?.reference)).toContain(`Task/${check.id}`);
    const [provenance] = await service.fhir.searchAll<Provenance>('Provenance', {
      target: `CarePlan/${carePlanId}`,
      _sort: '-recorded',
      _count: 1,
    });
    expect(provenance.activity?.text).toBe('reopen the plan for an infusion charted after its end');
    expect(provenance.entity?.map((e) => e.what.reference)).toContain(`Procedure/${procedureId}`);
    // Its check closed: completed again at the plan's next look. The same infusion heard again reopens nothing.
    await tasksClosedInEhr(carePlanId);
    expect(await service.app.get(PlanChanges).planChanged(carePlanId)).toMatchObject({ completed: 1 });
    const completedAgain = await plan(carePlanId);
    await service.app.get(InfusionEventsProducer).followUpAgain(procedureId);
    expect(await followUpJobDone(service, procedureId)).toMatchObject({ status: 'ignored' });
    expect((await plan(carePlanId)).meta?.versionId).toBe(completedAgain.meta?.versionId);
  });

  it('a plan the EHR completed itself stays so: an infusion charted under it has its post-infusion check alone', async () => {
    const enrolment = await enrolledActive();
    await periodSetInEhr(enrolment.carePlanId, { start: day(-30), end: day(-2) });
    const read = await plan(enrolment.carePlanId);
    await service.fhir.update<CarePlan>({ ...read, status: 'completed' });
    const procedureId = await completeInfusion(service, enrolment, `${day(-2)}T10:00:00.000Z`);
    // Since session 52 (before, ignored: no check).
    expect(await reportInfusion(service, procedureId)).toMatchObject({
      status: 'created',
      tasks: [expect.any(String)],
    });
    expect((await followUpTasks(service, procedureId)).map(actionOf)).toEqual(['post-infusion-check']);
    expect((await plan(enrolment.carePlanId)).status).toBe('completed');
  });
});
