import request from 'supertest';
import type { MedicationRequest, Provenance, Task } from '@medplum/fhirtypes';
import type { Job } from 'bullmq';
import { JOBS, taskChangedInEhrJobId } from '@kc/queue';
import { MaintenanceProcessor } from '../apps/worker/src/maintenance/maintenance.processor';
import { orderKeySearch, stateOf } from '@kc/task-states';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { TasksChangedInEhrPoller } from '../apps/worker/src/maintenance/tasks-changed-in-ehr-poller';
import { activeCondition, PREGNANCY } from './fixtures/patient-data';
import { actionOf, approveFirstSession, enrolPatient, maintenanceJobDone, postWebhook } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

/**
 * A Task awaiting a clinician's approval that an EHR sets to be done itself (Task.status ready, accepted, in progress),
 * bypassing the approval: no contraindication checked, no order written. Before session 43 it went on the to-do list as
 * if approved, and an EHR reading Task.status took it as approved. Now it stays off the to-do list and is returned for
 * approval (draft again, why in its statusReason, a Provenance naming the service) at its notification or the poll;
 * approving it here checks and orders it as any approval.
 */
describe('a Task awaiting approval set to be done in the EHR', () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService({ orderChangeGraceMs: 0 });
  }, 60_000);
  afterAll(() => service.stop());

  const clinician = () => service.as('clinician');
  const read = (task: Task) => service.fhir.read<Task>('Task', task.id!);
  const ids = async (list: '/worklist' | '/to-do', patient: string) =>
    (
      (await request(service.url).get(list).query({ patient, count: 100 }).set(clinician()).expect(200)).body.items as {
        id: string;
        attention?: string;
      }[]
    ).map((i) => ({ id: i.id, attention: i.attention }));

  async function sessionSetReadyInEhr(status: Task['status'] = 'ready') {
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const session = tasks.find((t) => actionOf(t) === 'infusion-session')!;
    const set = await service.fhir.update<Task>({ ...session, status }, { ifMatch: session.meta!.versionId });
    return { patient, carePlanId, session, set };
  }

  it('off the to-do list at once, returned for approval at its notification; approved here, it is ordered', async () => {
    const { patient, session, set } = await sessionSetReadyInEhr();
    await postWebhook(service, JSON.stringify(set)).expect(202);
    await maintenanceJobDone(
      service,
      taskChangedInEhrJobId(session.id!, set.meta!.versionId),
      'the Task changed in the EHR',
    );
    const returned = await read(session);
    expect([returned.status, stateOf(returned), returned.statusReason?.coding?.[0].code]).toEqual([
      'draft',
      'awaiting-approval',
      'approved-outside',
    ]);
    // Before, it was on the to-do list with no order to give; now on the worklist, saying why.
    expect((await ids('/to-do', patient)).map((i) => i.id)).not.toContain(session.id);
    expect(await ids('/worklist', patient)).toContainEqual({
      id: session.id,
      attention: expect.stringMatching(/^Set to be done outside ketamine-careplans while it awaited approval/),
    });
    const [provenance] = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${session.id}` })
    ).filter((p) => p.activity?.text === 'return for approval');
    expect(provenance?.entity?.[0].what.reference).toBe(`Task/${session.id}/_history/${set.meta!.versionId}`);

    const approved = await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: returned.meta!.versionId })
      .expect(200);
    expect([(approved.body as Task).status, (approved.body as Task).statusReason]).toEqual(['ready', undefined]);
    const orders = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    expect(orders.map((o) => o.status)).toEqual(['active']);
    // Its own approval, notified back, is not returned.
    await postWebhook(service, JSON.stringify(approved.body)).expect(202);
    await maintenanceJobDone(
      service,
      taskChangedInEhrJobId(session.id!, (approved.body as Task).meta!.versionId),
      'the approval notified back',
    );
    expect((await read(session)).status).toBe('ready');
  });

  it('a contraindicated patient’s session set in progress in the EHR: returned, and approving it here is refused', async () => {
    const { patient, session } = await sessionSetReadyInEhr('in-progress');
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], patient));
    await service.app.get(ContraindicationSweep).sweep();
    // Found by the poll on a server that cannot notify.
    const polled = await read(session);
    expect((await service.app.get(TasksChangedInEhrPoller).poll()).queued).toBeGreaterThanOrEqual(1);
    await maintenanceJobDone(
      service,
      taskChangedInEhrJobId(session.id!, polled.meta!.versionId),
      'the Task changed in the EHR',
    );
    const returned = await read(session);
    expect(returned.status).toBe('draft');
    await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: returned.meta!.versionId })
      .expect(422);
    expect(
      await service.fhir.searchAll<MedicationRequest>('MedicationRequest', { identifier: orderKeySearch(session.id!) }),
    ).toEqual([]);
  });

  it('returned for review (its order cancelled in the EHR), then set ready in the EHR: the sweep still runs, and returns it for approval', async () => {
    const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const session = await approveFirstSession(service, carePlanId);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    await service.fhir.update<MedicationRequest>({ ...order, status: 'cancelled' }, { ifMatch: order.meta!.versionId });
    const sweep = () =>
      service.app
        .get(MaintenanceProcessor)
        .process({ name: JOBS.overdueSweep, updateProgress: () => Promise.resolve() } as unknown as Job);
    await sweep();
    const returned = await read(session);
    expect(returned.status).toBe('draft');
    const setAgain = await service.fhir.update<Task>(
      { ...returned, status: 'ready' },
      { ifMatch: returned.meta!.versionId },
    );
    // Before, the sweep took it for an approved session whose order was closed and failed whole, returning it for
    // review again from awaiting approval (clinic day big seed 5054).
    await sweep();
    expect((await service.app.get(TasksChangedInEhrPoller).poll()).queued).toBeGreaterThanOrEqual(1);
    await maintenanceJobDone(
      service,
      taskChangedInEhrJobId(session.id!, setAgain.meta!.versionId),
      'the Task changed in the EHR',
    );
    expect((await read(session)).statusReason?.coding?.[0].code).toBe('approved-outside');
  });

  it('approved here before it was returned: its order is written, as any approval (CI, the clinic day)', async () => {
    const { session, set } = await sessionSetReadyInEhr();
    const approved = await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: set.meta!.versionId })
      .expect(200);
    expect(stateOf(approved.body as Task)).toBe('approved');
    // Before, the approval took it for approved already (status ready), its order written: none was.
    const orders = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    expect(orders.map((o) => o.status)).toEqual(['active']);
  });
});
