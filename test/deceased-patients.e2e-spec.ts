import request from 'supertest';
import type {
  CarePlan,
  CommunicationRequest,
  MedicationRequest,
  OperationOutcome,
  Patient,
  Provenance,
  Task,
} from '@medplum/fhirtypes';
import { recheckContraindicationsJobId } from '@kc/queue';
import { orderKeySearch } from '@kc/task-states';
import { DeceasedPatientsPoller } from '../apps/worker/src/maintenance/deceased-patients-poller';
import {
  actionOf,
  approveFirstSession,
  enrolPatient,
  maintenanceJobDone,
  postWebhook,
  worklistIdsOf,
} from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

/**
 * A patient the EHR records as deceased (Patient.deceased[x]). Before session 44 nothing changed: their sessions stayed
 * approved with their orders active, their plans active for an EHR reading CarePlan.status, and the fasting and
 * ride-home reminders went out to their address. Now their plans end (revoked, why in a note, a Provenance naming the
 * service), their open Tasks are withdrawn with their orders and reminders, and nothing is applied or approved for them.
 */
describe('a patient recorded as deceased in the EHR', () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService();
  }, 60_000);
  afterAll(() => service.stop());

  const clinician = () => service.as('clinician');
  async function recordedDeceased(patient: string): Promise<Patient> {
    const read = await service.fhir.read<Patient>('Patient', patient.split('/')[1]);
    return service.fhir.update<Patient>({ ...read, deceasedDateTime: '2026-12-01T08:00:00Z' });
  }
  const heard = (patient: string) =>
    maintenanceJobDone(service, recheckContraindicationsJobId(patient), 'the worker to hear of the death');

  it('told by the FHIR server: the plan ends, its sessions are withdrawn with their orders and reminders', async () => {
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const session = await approveFirstSession(service, carePlanId);
    await postWebhook(service, JSON.stringify(await recordedDeceased(patient))).expect(202);
    await heard(patient);

    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
    expect([plan.status, plan.note?.at(-1)?.text]).toEqual([
      'revoked',
      'Ended by ketamine-careplans: the patient is recorded as deceased in the EHR',
    ]);
    const [provenance] = (
      await service.fhir.searchAll<Provenance>('Provenance', { target: `CarePlan/${carePlanId}` })
    ).filter((p) => p.activity?.text === 'end the plan of a patient recorded as deceased');
    expect(provenance?.entity?.map((e) => e.what.reference)).toContain(patient);
    // Every Task of the plan closed; the approved session's order cancelled, its reminders revoked.
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    expect(tasks.filter((t) => ['draft', 'ready', 'on-hold'].includes(t.status)).map(actionOf)).toEqual([]);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    expect(order.status).toBe('cancelled');
    const reminders = await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
      'based-on': `CarePlan/${carePlanId}`,
    });
    expect(reminders.length).toBeGreaterThan(0);
    expect(reminders.filter((r) => r.status === 'active')).toEqual([]);
    expect(await worklistIdsOf(service, patient)).toEqual([]);
  });

  it('not told (a server that cannot notify of Patients): the approval is refused, and the plan ends all the same; the poll finds one too', async () => {
    const { patient, carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    await recordedDeceased(patient);
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
    const draft = tasks.find((t) => actionOf(t) === 'infusion-session')!;
    const refused = await request(service.url)
      .post(`/tasks/${draft.id}/$approve`)
      .set(clinician())
      .send({ versionId: draft.meta!.versionId })
      .expect(422);
    expect((refused.body as OperationOutcome).issue[0].details?.text).toMatch(/recorded as deceased/);
    // So is one whose approval reads no patient data (patient instructions: no contraindication check gates them).
    const instructions = tasks.find((t) => actionOf(t) === 'patient-instructions')!;
    await request(service.url)
      .post(`/tasks/${instructions.id}/$approve`)
      .set(clinician())
      .send({ versionId: instructions.meta!.versionId })
      .expect(422);
    expect(
      await service.fhir.searchAll<MedicationRequest>('MedicationRequest', { identifier: orderKeySearch(draft.id!) }),
    ).toEqual([]);
    await heard(patient);
    expect((await service.fhir.read<CarePlan>('CarePlan', carePlanId)).status).toBe('revoked');

    const other = await enrolPatient(service, 'ketamine-monthly-maintenance');
    await recordedDeceased(other.patient);
    expect((await service.app.get(DeceasedPatientsPoller).poll()).queued).toBeGreaterThanOrEqual(1);
    await heard(other.patient);
    expect((await service.fhir.read<CarePlan>('CarePlan', other.carePlanId)).status).toBe('revoked');
  });

  it('$apply for them is refused with a clear 422', async () => {
    const { patient } = await enrolPatient(service, 'ketamine-low-dose-series');
    await recordedDeceased(patient);
    const res = await request(service.url)
      .post('/fhir/PlanDefinition/ketamine-monthly-maintenance/$apply')
      .set(clinician())
      .send({
        resourceType: 'Parameters',
        parameter: [
          { name: 'subject', valueReference: { reference: patient } },
          { name: 'persist', valueBoolean: true },
        ],
      })
      .expect(422);
    expect((res.body as OperationOutcome).issue[0].details?.text).toMatch(/^The patient is recorded as deceased/);
    expect(await service.fhir.searchAll<CarePlan>('CarePlan', { subject: patient })).toHaveLength(1);
  });
});
