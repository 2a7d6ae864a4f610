import request from 'supertest';
import type { CarePlan, Period, Procedure, Provenance, Task } from '@medplum/fhirtypes';
import type { Queue } from 'bullmq';
import { getQueueToken } from '@nestjs/bullmq';
import { protocolWindowOf } from '@kc/protocols';
import { QUEUES, recheckContraindicationsJobId, taskChangedInEhrJobId } from '@kc/queue';
import { stateOf, windowAsSet } from '@kc/task-states';
import { RECOUNT_FROM_RETIMED_INFUSION } from '../apps/worker/src/followups/retimed-infusions';
import { ProcedurePoller } from '../apps/worker/src/maintenance/procedure-poller';
import {
  tellInfusionHoldingItsWrite,
  activeReminderTimes,
  actionOf,
  approveTask,
  completeInfusion,
  enrolPatient,
  followUpJobDone,
  followUpTasks,
  maintenanceJobDone,
  postWebhook,
  reportInfusion,
  waitFor,
} from './support/clinic';
import { holdFirst, startBehindProxy, type FlakyProxy, type ServiceBehindProxy } from './support/flaky-proxy';
import { startTestService, type TestService } from './support/test-service';

const DAY_MS = 24 * 3_600_000;

/**
 * An infusion whose time the EHR corrects after its follow-ups were written (Procedure.performedPeriod edited: charted
 * on the wrong day, or its end put right). Before session 45 nothing changed: the post-infusion check stayed due in the
 * week after the time first charted, so it could fall due eight days after the infusion it checks, and the next
 * session and its reminders kept their days. Now the follow-ups are counted again from the time the infusion says.
 */
describe('an infusion re-timed in the EHR after its follow-ups', () => {
  let service: TestService;
  // Behind a proxy, so a test can hold a follow-up's write back (a race made deterministic).
  let proxy: FlakyProxy;
  let behind: ServiceBehindProxy<TestService>;
  beforeAll(async () => {
    behind = await startBehindProxy((fhirBaseUrl) => startTestService({ fhirBaseUrl }));
    ({ service, proxy } = behind);
  }, 60_000);
  afterEach(() => {
    proxy.beforeForward = () => undefined;
    proxy.intercept = () => undefined;
  });
  afterAll(() => behind.stop());

  const shifted = (p: Period | undefined, ms: number): Period => ({
    start: new Date(Date.parse(p!.start!) + ms).toISOString(),
    end: new Date(Date.parse(p!.end!) + ms).toISOString(),
  });
  const read = (id: string) => service.fhir.read<Task>('Task', id);
  const heard = (procedureId: string) =>
    maintenanceJobDone(service, recheckContraindicationsJobId(`Procedure/${procedureId}`), 'the re-timing heard');
  async function retimedInEhr(procedureId: string, ms: number): Promise<Procedure> {
    const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
    return service.fhir.update<Procedure>(
      { ...procedure, performedPeriod: shifted(procedure.performedPeriod, ms) },
      { ifMatch: procedure.meta!.versionId },
    );
  }
  const recountProvenances = async (taskId: string) =>
    (await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${taskId}` })).filter(
      (p) => p.activity?.text === RECOUNT_FROM_RETIMED_INFUSION,
    );
  const activeReminders = (carePlanId: string, taskId: string) => activeReminderTimes(service, carePlanId, taskId);
  /** A patient's first infusion, charted and followed up: its check and next session, by action. */
  async function followedUp(end = '2027-01-04T10:00:00.000Z') {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, end);
    await reportInfusion(service, procedureId);
    const tasks = await followUpTasks(service, procedureId);
    const check = tasks.find((t) => actionOf(t) === 'post-infusion-check')!;
    const session = tasks.find((t) => actionOf(t) === 'next-induction-session')!;
    expect([check, session].every(Boolean)).toBe(true);
    return { ...enrolment, procedureId, check, session };
  }

  it('charted a day late and put right: its check and approved next session due a day earlier, the session’s reminders with it, a Provenance each', async () => {
    const { carePlanId, procedureId, check, session } = await followedUp();
    const approved = await approveTask(service, session);
    const reminders = await activeReminders(carePlanId, session.id!);
    expect(reminders.length).toBeGreaterThan(0);

    const retimed = await retimedInEhr(procedureId, -DAY_MS);
    await postWebhook(service, JSON.stringify(retimed)).expect(202);
    await heard(procedureId);

    for (const before of [check, approved]) {
      const after = await read(before.id!);
      // What an EHR reads (the due window) and what a clinician may reschedule within (the protocol window): a day
      // earlier, stamped as set here; its state as it was.
      expect(after.restriction?.period).toEqual(shifted(before.restriction?.period, -DAY_MS));
      expect(protocolWindowOf(after)).toEqual(shifted(protocolWindowOf(before), -DAY_MS));
      expect(windowAsSet(after)).toEqual(after.restriction?.period);
      expect([after.status, stateOf(after)]).toEqual([before.status, stateOf(before)]);
      const [provenance, ...more] = await recountProvenances(before.id!);
      expect(more).toEqual([]);
      expect(provenance.entity?.[0].what.reference).toBe(`Task/${before.id}/_history/${before.meta!.versionId}`);
      expect(provenance.reason?.[0].text).toMatch(/^The infusion it follows was re-timed in the EHR, from 2027-01-04 /);
    }
    expect(await activeReminders(carePlanId, session.id!)).toEqual(reminders.map((t) => t - DAY_MS));

    // Notified again (nothing new), or the infusion changed in another way: nothing counted again.
    const noted = await service.fhir.update<Procedure>({ ...retimed, note: [{ text: 'tolerated well' }] });
    await postWebhook(service, JSON.stringify(noted)).expect(202);
    await heard(procedureId);
    expect(await recountProvenances(check.id!)).toHaveLength(1);
  });

  it('based on a plan of the EHR’s own as well, named first: counted again all the same (since session 47)', async () => {
    const { patient, procedureId, check } = await followedUp();
    const { resource: episode } = await service.fhir.create<CarePlan>({
      resourceType: 'CarePlan',
      status: 'active',
      intent: 'plan',
      subject: { reference: patient },
    });
    const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
    await service.fhir.update<Procedure>({
      ...procedure,
      basedOn: [{ reference: `CarePlan/${episode.id}` }, ...procedure.basedOn!],
    });
    await postWebhook(service, JSON.stringify(await retimedInEhr(procedureId, -DAY_MS))).expect(202);
    await heard(procedureId);
    expect(protocolWindowOf(await read(check.id!))).toEqual(shifted(protocolWindowOf(check), -DAY_MS));
  });

  it('its check set to be done in the EHR while it awaited approval: counted again all the same, and returned for approval with its new window', async () => {
    const { procedureId, check } = await followedUp();
    // The EHR sets the check in progress (heard later: its notification is not posted yet).
    const inProgress = await service.fhir.update<Task>({ ...check, status: 'in-progress' });
    await postWebhook(service, JSON.stringify(await retimedInEhr(procedureId, -DAY_MS))).expect(202);
    await heard(procedureId);
    // Returned for approval by the recount's own write (since session 59: before, written in progress, awaiting
    // approval, until the EHR's change was heard): the EHR cannot approve it.
    const recounted = await read(check.id!);
    expect([recounted.status, stateOf(recounted)]).toEqual(['draft', 'awaiting-approval']);
    expect(recounted.statusReason?.coding?.[0]?.code).toBe('approved-outside');
    expect(protocolWindowOf(recounted)).toEqual(shifted(protocolWindowOf(check), -DAY_MS));
    expect(recounted.restriction?.period).toEqual(shifted(check.restriction?.period, -DAY_MS));
    const provenances = await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${check.id}` });
    expect(provenances.map((p) => p.reason?.[0]?.text).join('\n')).toMatch(
      /Returned for approval: it was set to be done outside ketamine-careplans/,
    );

    // Its change heard now: nothing left to return, the window as counted again.
    await postWebhook(service, JSON.stringify(inProgress)).expect(202);
    await maintenanceJobDone(service, taskChangedInEhrJobId(check.id!, inProgress.meta!.versionId), 'the change heard');
    const returned = await read(check.id!);
    expect([returned.status, stateOf(returned)]).toEqual(['draft', 'awaiting-approval']);
    expect(returned.meta?.versionId).toBe(recounted.meta?.versionId);
  });

  it('on a server that pages the history, the time first charted only behind `next`: counted again all the same', async () => {
    const { procedureId, check } = await followedUp();
    // Its time put right, then notes charted on it, the re-timing unheard until the last (a notification lost, say):
    // the time its follow-ups were planned from is only in the oldest version.
    let procedure = await retimedInEhr(procedureId, -DAY_MS);
    for (const text of ['tolerated well', 'no dissociation at discharge', 'driven home'])
      procedure = await service.fhir.update<Procedure>({ ...procedure, note: [...(procedure.note ?? []), { text }] });
    const versions = await service.fhir.versionsOf<Procedure>('Procedure', procedureId);
    expect(versions).toHaveLength(5);
    // A server paging the history by two (as HAPI does by 20): the first page holds the corrected time alone.
    const history = `/fhir/R4/Procedure/${procedureId}/_history`;
    const page = (n: number) => ({
      status: 200,
      body: {
        resourceType: 'Bundle',
        type: 'history',
        entry: versions.slice((n - 1) * 2, n * 2).map((resource) => ({ resource })),
        link:
          n * 2 < versions.length
            ? [{ relation: 'next', url: `${proxy.baseUrl}/Procedure/${procedureId}/_history?page=${n + 1}` }]
            : [],
      },
    });
    proxy.intercept = (method, path) => {
      if (method !== 'GET' || !path.startsWith(history)) return undefined;
      return page(Number(/[?&]page=(\d+)/.exec(path)?.[1] ?? 1));
    };
    await postWebhook(service, JSON.stringify(procedure)).expect(202);
    await heard(procedureId);
    // Before, only the first page was read: the versions there differ in nothing but their notes, and nothing moved.
    expect(protocolWindowOf(await read(check.id!))).toEqual(shifted(protocolWindowOf(check), -DAY_MS));
  });

  it('found by the poll, put a day later: a clinician’s reschedule stands with its reminders, its protocol window moves with the infusion', async () => {
    const { carePlanId, procedureId, check, session } = await followedUp();
    // Rescheduled to the last day of its protocol window (two days long).
    const window = session.restriction!.period!;
    const lastDay = { start: shifted(window, -DAY_MS).end, end: window.end };
    const rescheduled = await request(service.url)
      .post(`/tasks/${session.id}/$reschedule`)
      .set(service.as('clinician'))
      .send({ versionId: session.meta!.versionId, ...lastDay })
      .expect(200);
    const reminders = await activeReminders(carePlanId, session.id!);
    expect(reminders.length).toBeGreaterThan(0);

    await retimedInEhr(procedureId, DAY_MS);
    expect((await service.app.get(ProcedurePoller).poll()).queued).toBeGreaterThanOrEqual(1);
    await heard(procedureId);

    const after = await read(session.id!);
    expect(after.restriction?.period).toEqual(lastDay);
    expect(protocolWindowOf(after)).toEqual(shifted(protocolWindowOf(rescheduled.body as Task), DAY_MS));
    expect(stateOf(after)).toBe('rescheduled');
    const [provenance] = await recountProvenances(session.id!);
    expect(provenance.reason?.[0].text).toMatch(/set by the clinic, stands$/);
    // Its reminders as they were: none written again beside them (before, a second set, as if it had none).
    expect(await activeReminders(carePlanId, session.id!)).toEqual(reminders);
    expect((await read(check.id!)).restriction?.period).toEqual(shifted(check.restriction?.period, DAY_MS));
  });

  it('an approved session moved in the EHR, then its infusion re-timed before that move was followed: its reminders follow the move', async () => {
    const { carePlanId, procedureId, session } = await followedUp();
    const approved = await approveTask(service, session);
    const reminders = await activeReminders(carePlanId, session.id!);
    // The EHR moves it two days later; the service has not heard of that when the infusion's re-timing is heard.
    const moved = await service.fhir.update<Task>(
      { ...approved, restriction: { period: shifted(approved.restriction?.period, 2 * DAY_MS) } },
      { ifMatch: approved.meta!.versionId },
    );
    await postWebhook(service, JSON.stringify(await retimedInEhr(procedureId, -DAY_MS))).expect(202);
    await heard(procedureId);

    const after = await read(session.id!);
    expect(after.restriction?.period).toEqual(moved.restriction?.period);
    expect(windowAsSet(after)).toEqual(moved.restriction?.period);
    // Timed from the window it has, none left at the old times (before, they stayed, beside a second set).
    expect(await activeReminders(carePlanId, session.id!)).toEqual(reminders.map((t) => t + 2 * DAY_MS));
  });

  it('re-timed while its follow-up is running (it read the old time): counted again once that follow-up has written', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const end = '2027-01-04T10:00:00.000Z';
    const procedureId = await completeInfusion(service, enrolment, end);
    // The follow-up's write is held back until the infusion is re-timed and that is heard once.
    const write = await tellInfusionHoldingItsWrite(service, proxy, procedureId);
    const retimed = await retimedInEhr(procedureId, -DAY_MS);
    await postWebhook(service, JSON.stringify(retimed)).expect(202);
    const maintenance = service.app.get<Queue>(getQueueToken(QUEUES.maintenance));
    await waitFor(async () => {
      const job = await maintenance.getJob(recheckContraindicationsJobId(`Procedure/${procedureId}`));
      return !job || job.attemptsMade > 0;
    }, 'the re-timing heard once');
    write.release();
    await followUpJobDone(service, procedureId);
    await heard(procedureId);

    // Written from the time it read, then counted again from the time the infusion says.
    const check = (await followUpTasks(service, procedureId)).find((t) => actionOf(t) === 'post-infusion-check')!;
    expect(check.restriction?.period).toEqual({
      start: retimed.performedPeriod!.end,
      end: new Date(Date.parse(retimed.performedPeriod!.end!) + 7 * DAY_MS).toISOString(),
    });
    expect(await recountProvenances(check.id!)).toHaveLength(1);
  });
  it('re-timed again while the job of its first re-timing runs (it read the time before): counted from the latest', async () => {
    const { procedureId, check } = await followedUp();
    // The first re-timing's write is held back until the second is written and notified.
    const write = holdFirst(
      proxy,
      (method, _path, body) => method === 'POST' && body.includes(RECOUNT_FROM_RETIMED_INFUSION),
    );
    await postWebhook(service, JSON.stringify(await retimedInEhr(procedureId, -DAY_MS))).expect(202);
    await write.reached;
    const latest = await retimedInEhr(procedureId, -DAY_MS);
    await postWebhook(service, JSON.stringify(latest)).expect(202);
    write.release();
    // Every job of the infusion's record done, whatever its id.
    const maintenance = service.app.get<Queue>(getQueueToken(QUEUES.maintenance));
    const ofInfusion = recheckContraindicationsJobId(`Procedure/${procedureId}`);
    await waitFor(async () => {
      const jobs = await maintenance.getJobs(['waiting', 'active', 'delayed', 'prioritized']);
      return !jobs.some((j) => j?.id?.startsWith(ofInfusion));
    }, 'the re-timings heard');

    // Two days earlier in all. Before, the second notification was dropped (a job of that infusion was running, so
    // BullMQ ignored a job of the same id), and the check stayed a day off.
    const after = await read(check.id!);
    expect(protocolWindowOf(after)).toEqual(shifted(protocolWindowOf(check), -2 * DAY_MS));
    expect(after.restriction?.period).toEqual(shifted(check.restriction?.period, -2 * DAY_MS));
  });
  it('its job failed for good (the history could not be read), then re-timed again: heard again, counted from the latest', async () => {
    const { procedureId, check } = await followedUp();
    const history = `/Procedure/${procedureId}/_history`;
    proxy.intercept = (method, path) =>
      method === 'GET' && path.endsWith(history)
        ? { status: 400, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] } }
        : undefined;
    await postWebhook(service, JSON.stringify(await retimedInEhr(procedureId, -DAY_MS))).expect(202);
    const maintenance = service.app.get<Queue>(getQueueToken(QUEUES.maintenance));
    const jobId = recheckContraindicationsJobId(`Procedure/${procedureId}`);
    await waitFor(async () => (await maintenance.getJob(jobId))?.isFailed(), 'the job to fail for good');
    proxy.intercept = () => undefined;

    await postWebhook(service, JSON.stringify(await retimedInEhr(procedureId, -DAY_MS))).expect(202);
    await heard(procedureId);
    // Before, the failed job's id held back every later change of the infusion.
    expect(protocolWindowOf(await read(check.id!))).toEqual(shifted(protocolWindowOf(check), -2 * DAY_MS));
  });
});
