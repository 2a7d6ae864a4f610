import request from 'supertest';
import type { Period, Provenance, Task } from '@medplum/fhirtypes';
import { protocolWindowOf } from '@kc/protocols';
import { taskChangedInEhrJobId } from '@kc/queue';
import { stateOf, windowAsSet } from '@kc/task-states';
import { OverdueSweep } from '../apps/worker/src/maintenance/overdue-sweep';
import { TasksChangedInEhrPoller } from '../apps/worker/src/maintenance/tasks-changed-in-ehr-poller';
import {
  activeReminderTimes,
  actionOf,
  approveFirstSession,
  enrolPatient,
  maintenanceJobDone,
  postWebhook,
} from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

const DAY_MS = 24 * 3_600_000;

/**
 * A session's due window moved in the EHR (Task.restriction.period edited there, nothing else). Before session 44 the
 * service never noticed: the patient's reminders (nothing to eat for six hours before, a ride home) went out for the
 * old time, and a session moved from the past to next week still read overdue. Now the Task says which window the
 * service set (the window-as-set extension), and one moved elsewhere is followed at its notification or the poll.
 */
describe('a due window moved in the EHR', () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService();
  }, 60_000);
  afterAll(() => service.stop());

  const clinician = () => service.as('clinician');
  const read = (id: string) => service.fhir.read<Task>('Task', id);
  const shifted = (p: Period, ms: number): Period => ({
    start: new Date(Date.parse(p.start!) + ms).toISOString(),
    end: new Date(Date.parse(p.end!) + ms).toISOString(),
  });
  const activeReminders = (carePlanId: string, taskId: string) => activeReminderTimes(service, carePlanId, taskId);
  const followedProvenances = async (taskId: string) =>
    (await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${taskId}` })).filter(
      (p) => p.activity?.text === 'follow a window moved in the EHR',
    );
  async function movedInEhr(task: Task, window: Period): Promise<Task> {
    return service.fhir.update<Task>(
      { ...task, restriction: { ...task.restriction, period: window } },
      { ifMatch: task.meta!.versionId },
    );
  }
  async function heard(moved: Task): Promise<void> {
    await postWebhook(service, JSON.stringify(moved)).expect(202);
    await maintenanceJobDone(
      service,
      taskChangedInEhrJobId(moved.id!, moved.meta!.versionId),
      'the Task changed in the EHR',
    );
  }

  it('an approved session moved two days later: its reminders move with it, with a Provenance naming the service', async () => {
    const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const approved = await approveFirstSession(service, carePlanId);
    const before = await activeReminders(carePlanId, approved.id!);
    expect(before.length).toBeGreaterThan(0);
    // Two days later within its protocol window: it starts two days later and ends when it did.
    const set = approved.restriction!.period!;
    const window = { start: shifted(set, 2 * DAY_MS).start, end: set.end };
    const moved = await movedInEhr(approved, window);
    await heard(moved);

    // Each reminder two days later (they are timed from its start; UTC clinic: two calendar days are 48 h), none left
    // at the old times.
    expect(await activeReminders(carePlanId, approved.id!)).toEqual(before.map((t) => t + 2 * DAY_MS));
    const followed = await read(approved.id!);
    expect([followed.status, stateOf(followed), followed.restriction?.period]).toEqual(['ready', 'approved', window]);
    expect(windowAsSet(followed)).toEqual(window);
    const [provenance, ...more] = await followedProvenances(approved.id!);
    expect(more).toEqual([]);
    expect(provenance.entity?.[0].what.reference).toBe(`Task/${approved.id}/_history/${moved.meta!.versionId}`);
    expect(provenance.target.length).toBe(1 + before.length);
    expect(provenance.reason?.[0].text).toMatch(/^Its window was moved outside ketamine-careplans, from /);
    expect(provenance.reason?.[0].text).not.toMatch(/outside its protocol window/);

    // The follow notified back, and a clinician's own reschedule: each says its window as set, and is not followed.
    await heard(followed);
    const rescheduled = await request(service.url)
      .post(`/tasks/${approved.id}/$reschedule`)
      .set(clinician())
      .send({ versionId: followed.meta!.versionId, ...set })
      .expect(200);
    await heard(rescheduled.body as Task);
    expect(await followedProvenances(approved.id!)).toHaveLength(1);
    expect(await activeReminders(carePlanId, approved.id!)).toEqual(before);
  });

  it('an overdue session moved to next week is due again, found by the poll; one moved outside its protocol window says so on the lists', async () => {
    // Its plan begins on 2027-01-01: the sweep, run as if on 2027-03-01, finds its first session's window ended.
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    await service.app.get(OverdueSweep).sweep(new Date('2027-03-01T00:00:00Z'));
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const overdue = tasks.find((t) => actionOf(t) === 'infusion-session' && stateOf(t) === 'overdue')!;
    expect(overdue).toBeDefined();

    // Next week, before what the protocol allows it: the EHR's to schedule, the clinician's to know.
    const nextWeek = Date.now() + 7 * DAY_MS;
    const window = { start: new Date(nextWeek).toISOString(), end: new Date(nextWeek + DAY_MS).toISOString() };
    const moved = await movedInEhr(overdue, window);
    expect((await service.app.get(TasksChangedInEhrPoller).poll()).queued).toBeGreaterThanOrEqual(1);
    await maintenanceJobDone(service, taskChangedInEhrJobId(overdue.id!, moved.meta!.versionId), 'the poll');
    const followed = await read(overdue.id!);
    expect([followed.status, stateOf(followed), followed.restriction?.period]).toEqual([
      'draft',
      'awaiting-approval',
      window,
    ]);
    const [provenance] = await followedProvenances(overdue.id!);
    expect(provenance.reason?.[0].text).toMatch(/Due outside its protocol window/);

    const view = await request(service.url)
      .get('/worklist/view')
      .query({ patient, count: 100 })
      .set(clinician())
      .expect(200);
    const row = (view.body.items as { id: string; view: { windowNotice?: string } }[]).find((i) => i.id === overdue.id);
    expect(row?.view.windowNotice).toMatch(/^Due outside its protocol window \(/);
    // Its protocol window is as the protocol put it: the move does not widen what a clinician may reschedule to.
    expect(protocolWindowOf(followed)).toEqual(protocolWindowOf(overdue));
  });
  it('a session awaiting approval moved outside its protocol window: approved there only with a reason, which its Provenance keeps', async () => {
    const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const session = tasks.find((t) => actionOf(t) === 'infusion-session')!;
    // Two weeks later than the protocol allows it.
    const moved = await movedInEhr(session, shifted(protocolWindowOf(session)!, 14 * DAY_MS));
    await heard(moved);
    const followed = await read(session.id!);

    const refused = await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: followed.meta!.versionId })
      .expect(422);
    const [issue] = refused.body.issue;
    expect(issue.code).toBe('business-rule');
    expect(issue.details.text).toMatch(/^Due outside its protocol window \(.*\): approving keeps it due then/);
    expect(issue.expression).toEqual(['Task.restriction.period']);
    expect(issue.diagnostics).toMatch(/outsideWindowReason/);
    // The bulk approval refuses it the same way (it has no reason to give).
    const bulk = await request(service.url)
      .post('/tasks/$bulk-approve')
      .set(clinician())
      .send({ tasks: [{ id: session.id, versionId: followed.meta!.versionId }] })
      .expect(200);
    expect(bulk.body.results[0]).toMatchObject({ result: 'refused', status: 422, code: 'business-rule' });
    const unchanged = await read(session.id!);
    expect([unchanged.status, unchanged.meta?.versionId]).toEqual(['draft', followed.meta!.versionId]);

    const reason = 'Patient abroad until then; agreed with the prescriber';
    const approved = await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: followed.meta!.versionId, outsideWindowReason: reason })
      .expect(200);
    expect([approved.body.status, approved.body.restriction.period]).toEqual(['ready', moved.restriction!.period]);
    const provenances = await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${session.id}` });
    const decision = provenances.find((p) => p.activity?.text === 'approve')!;
    expect(decision.reason?.[0].text).toMatch(
      new RegExp(`^Approved where it is due \\(.*\\), due outside its protocol window \\(.*\\): ${reason}$`),
    );
  });
});
