import type { CarePlan, MedicationRequest, Procedure, Provenance, Task } from '@medplum/fhirtypes';
import { orderChangedJobId } from '@kc/queue';
import { orderKeySearch, stateOf } from '@kc/task-states';
import { administrationOf } from './fixtures/orders';
import { AdministrationRecorded } from '../apps/worker/src/followups/administration-recorded';
import { PlanChanges } from '../apps/worker/src/maintenance/plan-changes';
import {
  approveFirstSession,
  completeInfusion,
  enrolPatient,
  maintenanceJobDone,
  reportInfusion,
  waitFor,
} from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

const HOUR_MS = 3_600_000;

/**
 * A session given at the pump, its plan stopped in the EHR before the eMAR charted the pump's record (documentation
 * after the fact): the service withdrew the session and cancelled its order, reading no record of the pump. The record,
 * charted late, says the pump began before the withdrawal. Before session 49 the session stayed withdrawn and its order
 * cancelled ("withdrawn before any administration", to an EHR or pharmacy reading MedicationRequest.status) though the
 * drug went in. Now it is answered by its infusion (done, its order completed), whichever of the two is charted last.
 * The times are real (the day before yesterday), as the withdrawal's own time is the server's clock.
 */
describe('a session withdrawn with its stopped plan, the pump’s record of it charted late', () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService({ orderChangeGraceMs: 0 });
  }, 60_000);
  afterAll(() => service.stop());

  /** A patient's first session, approved, in a window days ago; its plan then stopped in the EHR (notified). */
  async function withdrawnSession() {
    const startDate = new Date(Date.now() - 3 * 24 * HOUR_MS).toISOString().slice(0, 10);
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { startDate });
    const session = await approveFirstSession(service, enrolment.carePlanId);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    const begun = Date.parse(session.restriction!.period!.start!) + HOUR_MS;
    expect(begun).toBeLessThan(Date.now());
    const plan = await service.fhir.read<CarePlan>('CarePlan', enrolment.carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'revoked' });
    await service.app.get(PlanChanges).planChanged(enrolment.carePlanId);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('cancelled');
    expect(stateOf(await service.fhir.read<Task>('Task', session.id!))).toBe('withdrawn');
    const chartPumpRecord = async () =>
      (
        await service.fhir.create(
          administrationOf(order, 'completed', {
            start: new Date(begun).toISOString(),
            end: new Date(begun + 50 * 60_000).toISOString(),
          }),
        )
      ).resource;
    return { enrolment, session, order, begun, chartPumpRecord };
  }

  async function expectAnsweredBy(taskId: string, orderId: string, infusion: string) {
    const task = await service.fhir.read<Task>('Task', taskId);
    expect([stateOf(task), task.output?.map((o) => o.valueReference?.reference)]).toEqual([
      'done',
      [`Procedure/${infusion}`],
    ]);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', orderId)).status).toBe('completed');
    const provenances = await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${taskId}` });
    const undone = provenances.filter((p) => p.activity?.text === 'undo a closing that crossed the pump');
    expect(undone).toHaveLength(1);
    expect(undone[0].reason?.[0]?.text).toMatch(/charted after the service's withdrawal, says it began/);
  }

  it('the infusion charted first, then the pump’s record: the record’s job answers the session by that infusion', async () => {
    const { enrolment, session, order, begun, chartPumpRecord } = await withdrawnSession();
    const infusion = await completeInfusion(service, enrolment, new Date(begun + HOUR_MS).toISOString());
    // The stopped plan takes the infusion's check alone (since session 52; nothing before), and no record ties a
    // session to the infusion yet.
    expect(await reportInfusion(service, infusion)).toMatchObject({ status: 'created', fulfilled: 0 });
    const record = await chartPumpRecord();
    await service.app.get(AdministrationRecorded).heard(record.id!);
    await expectAnsweredBy(session.id!, order.id!, infusion);
  });

  it('the pump’s record charted first, then the infusion: left withdrawn until the infusion, whose follow-up has the order judged again', async () => {
    const { enrolment, session, order, begun, chartPumpRecord } = await withdrawnSession();
    const record = await chartPumpRecord();
    await service.app.get(AdministrationRecorded).heard(record.id!);
    // No infusion on record to answer it: not reopened (its order would stand active after the drug went in).
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('cancelled');
    const infusion = await completeInfusion(service, enrolment, new Date(begun + HOUR_MS).toISOString());
    expect(await reportInfusion(service, infusion)).toMatchObject({ cancelledOrdersGiven: [order.id] });
    await maintenanceJobDone(service, orderChangedJobId(order.id!), 'the order’s job');
    await expectAnsweredBy(session.id!, order.id!, infusion);
  });

  it('the infusion charted naming no plan: the pump’s record answers the session by it, and ties it to the plan', async () => {
    const { enrolment, session, order, begun, chartPumpRecord } = await withdrawnSession();
    const { resource: infusion } = await service.fhir.create<Procedure>({
      resourceType: 'Procedure',
      status: 'completed',
      code: { coding: [{ system: 'http://snomed.info/sct', code: '14152002', display: 'Intravenous infusion' }] },
      subject: { reference: enrolment.patient },
      performedPeriod: { start: new Date(begun).toISOString(), end: new Date(begun + HOUR_MS).toISOString() },
    });
    expect(await reportInfusion(service, infusion.id!)).toMatchObject({ status: 'ignored' });
    const record = await chartPumpRecord();
    await service.app.get(AdministrationRecorded).heard(record.id!);
    await expectAnsweredBy(session.id!, order.id!, infusion.id!);
    await waitFor(
      async () => (await service.fhir.read<Procedure>('Procedure', infusion.id!)).basedOn,
      'the infusion linked',
    );
    const linked = await service.fhir.read<Procedure>('Procedure', infusion.id!);
    expect(linked.basedOn?.map((b) => b.reference)).toEqual([`CarePlan/${enrolment.carePlanId}`]);
  });
});
