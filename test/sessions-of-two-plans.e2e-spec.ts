import request from 'supertest';
import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { protocolWindowOf } from '@kc/protocols';
import { orderKeySearch } from '@kc/task-states';
import { actionOf, applyPlan, approveFirstSession, enrolPatient } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

/**
 * A patient on two protocols at once (a low-dose series, and monthly maintenance begun before the series ended): each
 * plan proposes its own sessions. Before session 45 both could be approved for the same days, two ketamine orders
 * written here for one week; the check against orders already on record saw only the EHR's. Now an approval whose
 * window shares days with another plan's approved session is refused, naming it, unless the clinician approves it
 * beside that one.
 */
describe('sessions of two care plans of one patient', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  }, 60_000);
  afterAll(() => service.stop());

  const clinician = () => service.as('clinician');
  async function firstSession(carePlanId: string): Promise<Task> {
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    return tasks.find((t) => actionOf(t) === 'infusion-session')!;
  }
  const ordersOf = (task: Task) =>
    service.fhir.searchAll<MedicationRequest>('MedicationRequest', { identifier: orderKeySearch(task.id!) });

  it('another plan’s session approved for the same days: refused (409), naming it, until approved beside it', async () => {
    const { patient, carePlanId: series } = await enrolPatient(service, 'ketamine-low-dose-series');
    const maintenance = await applyPlan(service, 'ketamine-monthly-maintenance', patient);
    const approved = await approveFirstSession(service, series);
    const [seriesOrder] = await ordersOf(approved);
    const session = await firstSession(maintenance.id!);

    const refused = await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: session.meta!.versionId })
      .expect(409);
    const [issue, ...related] = refused.body.issue;
    expect(issue.code).toBe('conflict');
    expect(issue.details.text).toMatch(/^Another care plan of this patient has a session approved for days this one/);
    // In the clinician's words: the drug, its days, where it was approved; the references for an integrator.
    expect(issue.details.text).toMatch(/2027-01-0\d.*approved in the ketamine care plan/);
    expect(issue.expression).toEqual([`MedicationRequest/${seriesOrder.id}`]);
    expect(issue.diagnostics).toMatch(/"alongside"/);
    expect(related.map((r: { expression: string[] }) => r.expression)).toEqual([
      [`MedicationRequest/${seriesOrder.id}`, `Task/${approved.id}`],
    ]);
    const bulk = await request(service.url)
      .post('/tasks/$bulk-approve')
      .set(clinician())
      .send({ tasks: [{ id: session.id, versionId: session.meta!.versionId }] })
      .expect(200);
    expect(bulk.body.results[0]).toMatchObject({ result: 'refused', status: 409, code: 'conflict' });
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('draft');
    expect(await ordersOf(session)).toEqual([]);

    // Both meant: approved beside it, its own order written.
    await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: session.meta!.versionId, alongside: [`MedicationRequest/${seriesOrder.id}`] })
      .expect(200);
    expect((await ordersOf(session)).map((o) => o.status)).toEqual(['active']);
  });

  it('another plan’s sessions on other days, or its approved session since rejected, refuse nothing', async () => {
    // Maintenance begun a month after the series: their first sessions share no day.
    const { patient, carePlanId: series } = await enrolPatient(service, 'ketamine-low-dose-series');
    const later = await applyPlan(service, 'ketamine-monthly-maintenance', patient, '2027-02-01');
    await approveFirstSession(service, series);
    await approveFirstSession(service, later.id!);

    // The same days, but the other plan's approved session rejected since (its order cancelled).
    const other = await enrolPatient(service, 'ketamine-low-dose-series');
    const sameDays = await applyPlan(service, 'ketamine-monthly-maintenance', other.patient);
    const approved = await approveFirstSession(service, other.carePlanId);
    await request(service.url)
      .post(`/tasks/${approved.id}/$reject`)
      .set(clinician())
      .send({ versionId: approved.meta!.versionId, reason: 'series ended; maintenance instead' })
      .expect(200);
    await approveFirstSession(service, sameDays.id!);
  });
  it('a session rescheduled into days another plan’s approved session holds: refused the same way, approved already or not', async () => {
    const { patient, carePlanId: series } = await enrolPatient(service, 'ketamine-low-dose-series');
    const maintenance = await applyPlan(service, 'ketamine-monthly-maintenance', patient);
    const [a, b] = [await firstSession(series), await firstSession(maintenance.id!)];
    // Each protocol window's first day, and its last two, as instants.
    const at = (task: Task, fromStart: number, fromEnd?: number) => {
      const allowed = protocolWindowOf(task)!;
      const instant = (base: string, days: number) => new Date(Date.parse(base) + days * 86_400_000).toISOString();
      return fromEnd === undefined
        ? { start: allowed.start!, end: instant(allowed.start!, fromStart) }
        : { start: instant(allowed.end!, -fromEnd), end: allowed.end! };
    };
    const reschedule = (task: Task, window: { start: string; end: string }, body: object = {}) =>
      request(service.url)
        .post(`/tasks/${task.id}/$reschedule`)
        .set(clinician())
        .send({ versionId: task.meta!.versionId, ...window, ...body });

    const aFirstDay = (await reschedule(a, at(a, 1)).expect(200)).body as Task;
    // Not approved yet, into A's day: refused, at its new window.
    const refused = await reschedule(b, at(b, 1)).expect(409);
    expect(refused.body.issue[0].code).toBe('conflict');
    expect(refused.body.issue[0].details.text).toMatch(/Rescheduling it there would order two infusions/);
    const bLastDays = (await reschedule(b, at(b, 0, 2)).expect(200)).body as Task;
    const [bOrder] = await ordersOf(bLastDays);

    // Approved already, into B's days: refused, naming B's order; beside it when asked.
    const again = await reschedule(aFirstDay, at(aFirstDay, 0, 2)).expect(409);
    expect(again.body.issue[0].expression).toEqual([`MedicationRequest/${bOrder.id}`]);
    await reschedule(aFirstDay, at(aFirstDay, 0, 2), { alongside: [`MedicationRequest/${bOrder.id}`] }).expect(200);
  });
});
