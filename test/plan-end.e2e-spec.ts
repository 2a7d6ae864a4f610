import request from 'supertest';
import type { CarePlan, MedicationRequest, Task } from '@medplum/fhirtypes';
import { orderKeySearch } from '@kc/task-states';
import { PlanChanges } from '../apps/worker/src/maintenance/plan-changes';
import {
  actionOf,
  approveFirstSession,
  completeInfusion,
  enrolPatient,
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
});
