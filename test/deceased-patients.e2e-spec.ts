import request from 'supertest';
import type { Job } from 'bullmq';
import type {
  CarePlan,
  Communication,
  CommunicationRequest,
  MedicationRequest,
  OperationOutcome,
  Patient,
  Provenance,
  Task,
} from '@medplum/fhirtypes';
import { JOBS, recheckContraindicationsJobId } from '@kc/queue';
import { orderKeySearch } from '@kc/task-states';
import { DeceasedPatientsPoller } from '../apps/worker/src/maintenance/deceased-patients-poller';
import { MaintenanceProcessor } from '../apps/worker/src/maintenance/maintenance.processor';
import {
  actionOf,
  approveFirstSession,
  enrolPatient,
  maintenanceJobDone,
  postWebhook,
  worklistIdsOf,
} from './support/clinic';
import { mailsTo, serviceWithMailDown, startSmtpServer, serviceEmailingClinic } from './support/smtp-server';
import { startTestService, type TestService } from './support/test-service';
import { infusedForCheck } from './support/checks';
import { PlanChanges } from '../apps/worker/src/maintenance/plan-changes';
import { StoppedPlanSweep } from '../apps/worker/src/maintenance/stopped-plan-sweep';

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

  it("a plan the EHR stopped kept its post-infusion check; the patient's death withdraws it with its reminder", async () => {
    const infused = await infusedForCheck(service);
    await request(service.url)
      .post(`/tasks/${infused.check.id}/$approve`)
      .set(clinician())
      .send({ versionId: infused.check.meta!.versionId })
      .expect(200);
    const plan = await service.fhir.read<CarePlan>('CarePlan', infused.carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'revoked' });
    await service.app.get(PlanChanges).planChanged(infused.carePlanId);
    const checkNow = () => service.fhir.read<Task>('Task', infused.check.id!);
    const reminders = async () =>
      (
        await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
          'based-on': `CarePlan/${infused.carePlanId}`,
        })
      ).filter((r) => r.about?.some((a) => a.reference === `Task/${infused.check.id}`));
    expect((await checkNow()).status).toBe('ready');
    expect((await reminders()).map((r) => r.status)).toEqual(['active']);

    await postWebhook(service, JSON.stringify(await recordedDeceased(infused.patient))).expect(202);
    await heard(infused.patient);
    expect(await checkNow()).toMatchObject({
      status: 'cancelled',
      statusReason: { text: 'Withdrawn: its care plan was stopped (revoked)' },
    });
    expect((await reminders()).map((r) => r.status)).toEqual(['revoked']);
    // The EHR's plan is left as the EHR stopped it: not tagged as ended for the death.
    expect((await service.fhir.read<CarePlan>('CarePlan', infused.carePlanId)).meta?.tag ?? []).toEqual([]);
  });

  it("a check kept under a plan the EHR stopped, its patient's death not heard: the sweep withdraws it", async () => {
    const infused = await infusedForCheck(service);
    const plan = await service.fhir.read<CarePlan>('CarePlan', infused.carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'revoked' });
    const sweep = service.app.get(StoppedPlanSweep);
    await sweep.sweep();
    expect((await service.fhir.read<Task>('Task', infused.check.id!)).status).toBe('draft');
    // The death recorded, nothing told of it (as when the follow-up proposed the check while the death was heard).
    await recordedDeceased(infused.patient);
    await sweep.sweep();
    expect((await service.fhir.read<Task>('Task', infused.check.id!)).status).toBe('cancelled');
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

/**
 * A death recorded in error and taken back in the EHR (Patient.deceased[x] removed). The plans the death ended stay
 * ended (what they held was withdrawn; only a clinician knows what the patient's care is now), but before session 46
 * nobody was told: the patient's care stopped, and the plan's note said only that they had died. Now the 15-minute
 * sweep finds such a plan (its tag), the clinic is told by each channel once, and the plan's note says what to do.
 */
describe('a death recorded in error, taken back in the EHR', () => {
  const ON_CALL = 'PractitionerRole/on-call';

  async function deathRecorded(service: TestService, patient: string, deceased: boolean): Promise<void> {
    const read = await service.fhir.read<Patient>('Patient', patient.split('/')[1]);
    const { deceasedDateTime: _, deceasedBoolean: __, ...alive } = read;
    await service.fhir.update<Patient>(deceased ? { ...read, deceasedDateTime: '2026-12-01T08:00:00Z' } : alive);
  }
  async function endedForDeath(service: TestService): Promise<{ patient: string; carePlanId: string }> {
    const enrolled = await enrolPatient(service, 'ketamine-low-dose-series');
    await approveFirstSession(service, enrolled.carePlanId);
    await deathRecorded(service, enrolled.patient, true);
    await postWebhook(
      service,
      JSON.stringify(await service.fhir.read<Patient>('Patient', enrolled.patient.split('/')[1])),
    ).expect(202);
    await maintenanceJobDone(
      service,
      recheckContraindicationsJobId(enrolled.patient),
      'the worker to hear of the death',
    );
    return enrolled;
  }
  /** The 15-minute sweep, run at once as its schedule runs it. */
  async function sweep(service: TestService): Promise<{ deathsTakenBack: number }> {
    const job = { name: JOBS.overdueSweep, updateProgress: () => Promise.resolve() } as unknown as Job;
    return (await service.app.get(MaintenanceProcessor).process(job)) as { deathsTakenBack: number };
  }
  /** The messages to the clinic about the plan (R4 has no search on Communication.about: by its patient). */
  const alertsAbout = async (service: TestService, carePlanId: string) =>
    (await service.fhir.searchAll<Communication>('Communication', { category: 'clinic-alert' })).filter((c) =>
      c.about?.some((a) => a.reference === `CarePlan/${carePlanId}`),
    );

  it('the clinic is told once, by email and in the inbox; the plan stays ended, its note saying to apply the protocol again', async () => {
    const smtp = await startSmtpServer();
    const service = await serviceEmailingClinic(smtp, {
      clinicAlertRecipients: [ON_CALL],
      publicUrl: 'https://careplans.clinic.test',
    });
    try {
      const { patient, carePlanId } = await endedForDeath(service);
      // Still recorded as deceased: nothing to tell.
      expect((await sweep(service)).deathsTakenBack).toBe(0);
      expect(mailsTo(smtp, 'oncall@clinic.test')).toEqual([]);

      await deathRecorded(service, patient, false);
      expect((await sweep(service)).deathsTakenBack).toBe(1);
      const [mail] = mailsTo(smtp, 'oncall@clinic.test');
      expect(mail.body).toMatch(
        /Subject: Ketamine care plans: a patient's death record was taken back; their care plan stays ended, to review/,
      );
      expect(mail.body).toMatch(/was ended on \d{4}-\d{2}-\d{2} because the EHR recorded them as deceased/);
      expect(mail.body).toMatch(/apply the protocol again for them/);
      expect(mail.body).toMatch(/This email names no patient/);
      const patientRead = await service.fhir.read<Patient>('Patient', patient.split('/')[1]);
      for (const name of [patientRead.name?.[0]?.family, patient.split('/')[1]].filter(Boolean))
        expect(mail.body).not.toContain(name);
      const inbox = (await alertsAbout(service, carePlanId)).find((c) => c.recipient?.[0]?.reference === ON_CALL);
      expect(inbox).toMatchObject({ subject: { reference: patient }, priority: 'urgent' });
      expect(inbox?.payload?.[0].contentString).toMatch(/This message names the patient/);

      const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
      expect(plan.status).toBe('revoked');
      expect(plan.note?.at(-1)?.text).toMatch(
        /^The EHR no longer records the patient as deceased: this plan stays ended/,
      );
      expect(plan.meta?.tag?.map((t) => t.code)).toContain('death-record-corrected');
      const provenances = await service.fhir.searchAll<Provenance>('Provenance', { target: `CarePlan/${carePlanId}` });
      expect(provenances.map((p) => p.activity?.text)).toContain(
        'note that the death which ended the plan was taken back',
      );
      // What a clinician sees on the patient view: the plan stopped, and why, and what to do.
      const timeline = await request(service.url)
        .get(`/patients/${patient.split('/')[1]}/timeline`)
        .set(service.as('clinician'))
        .expect(200);
      expect(timeline.body.carePlans).toEqual([
        expect.objectContaining({ id: carePlanId, status: 'revoked', note: plan.note?.at(-1)?.text }),
      ]);

      // Told once: the next sweep tells nobody again.
      expect((await sweep(service)).deathsTakenBack).toBe(0);
      expect(mailsTo(smtp, 'oncall@clinic.test')).toHaveLength(1);
      expect(await alertsAbout(service, carePlanId)).toHaveLength(2);
      // The clinic goes on: the protocol applied again.
      await request(service.url)
        .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
        .set(service.as('clinician'))
        .send({
          resourceType: 'Parameters',
          parameter: [
            { name: 'subject', valueReference: { reference: patient } },
            { name: 'persist', valueBoolean: true },
          ],
        })
        .expect(200);
    } finally {
      await service.stop();
      await smtp.stop();
    }
  });

  it('with the mail server down: the inbox is told, the plan keeps its tag, and the email goes once the server is back', async () => {
    const { mail, cut: service } = await serviceWithMailDown({ clinicAlertRecipients: [ON_CALL] });
    try {
      const { patient, carePlanId } = await endedForDeath(service);
      await deathRecorded(service, patient, false);
      expect((await sweep(service)).deathsTakenBack).toBe(0);
      expect((await alertsAbout(service, carePlanId)).map((c) => c.identifier?.[0].value)).toEqual([
        `inbox:death-taken-back:CarePlan/${carePlanId}`,
      ]);
      const still = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
      expect(still.meta?.tag?.map((t) => t.code)).toContain('ended-for-death');

      mail.comeBack();
      expect((await sweep(service)).deathsTakenBack).toBe(1);
      expect(mail.received.map((m) => m.to)).toEqual([['oncall@clinic.test']]);
      expect(await alertsAbout(service, carePlanId)).toHaveLength(2);
      const noted = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
      expect(noted.meta?.tag?.map((t) => t.code)).toContain('death-record-corrected');
    } finally {
      await service.stop();
      await mail.stop();
    }
  });
});
