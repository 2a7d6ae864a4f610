import request from 'supertest';
import type { Job, Queue } from 'bullmq';
import { getQueueToken } from '@nestjs/bullmq';
import type { Appointment, Communication, DetectedIssue, QuestionnaireResponse } from '@medplum/fhirtypes';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { appointmentBookedJobId, checkAnsweredElsewhereJobId, infusionJobId, JOBS, QUEUES } from '@kc/queue';
import { protocolWindowOf } from '@kc/protocols';
import { MaintenanceProcessor } from '../apps/worker/src/maintenance/maintenance.processor';
import { FailingWorkAlerts } from '../apps/worker/src/alerts/failing-work-alerts';
import { checkAnswers, infusedForCheck } from './support/checks';
import {
  approveFirstSession,
  completeInfusion,
  enrolPatient,
  followUpTasks,
  maintenanceJobDone,
  postWebhook,
  sendInfusionEvent,
  waitFor,
} from './support/clinic';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy';
import { mailsTo, startSmtpServer, type SmtpServer } from './support/smtp-server';
import { startTestService, type TestService } from './support/test-service';

const MINUTE = 60_000;
const ON_CALL = 'PractitionerRole/on-call';
const QUESTIONNAIRE = 'https://ketamine-careplans.example/fhir/Questionnaire/post-infusion-check';
const ALERT_KEY = 'https://ketamine-careplans.example/fhir/NamingSystem/clinic-alert-key';

/**
 * A patient's check answers that cannot be recorded (a portal's, written without the Task) go to no clinician either,
 * whatever effect they report; they are told the same way (since session 61).
 *
 * An infusion whose follow-up keeps failing (the FHIR server refusing its writes, or down past the job's attempts) has
 * no post-infusion check on the worklist, and before session 61 only an operator's dead-letter view said so, for the
 * week its job is tried again. The clinic is told once it has failed for FOLLOW_UP_FAILING_ALERT_MS (by email and in
 * the EHR's inbox, by the 15-minute sweep's look), and told again once it has run.
 */
describe('follow-up work whose jobs keep failing is told to the clinic', () => {
  let sandbox: FhirSandbox;
  let proxy: FlakyProxy;
  let smtp: SmtpServer;
  let service: TestService;
  /** While on, the FHIR server refuses every transaction (the follow-up's writes): a fault of the job's own. */
  let refusing = false;

  beforeAll(async () => {
    sandbox = await startFhirSandbox();
    proxy = await startFlakyProxy(sandbox.baseUrl);
    proxy.intercept = (method, _path, body) =>
      refusing && method === 'POST' && /"type"\s*:\s*"transaction"/.test(body)
        ? {
            status: 422,
            body: {
              resourceType: 'OperationOutcome',
              issue: [{ severity: 'error', code: 'processing', details: { text: 'refused by a profile' } }],
            },
          }
        : undefined;
    smtp = await startSmtpServer();
    service = await startTestService({
      fhirBaseUrl: proxy.baseUrl,
      jobAttempts: 2,
      jobBackoffMs: 50,
      smtp: { url: smtp.url, from: 'Careplans <careplans@clinic.test>' },
      clinicAlertEmails: ['oncall@clinic.test'],
      clinicAlertRecipients: [ON_CALL],
      publicUrl: 'https://careplans.clinic.test',
      followUpFailingAlertMs: 60 * MINUTE,
      // A portal's answers are taken at once (a clinic waits a little for the EHR to link them itself).
      checkAnswersGraceMs: 0,
    });
  });
  afterEach(() => {
    refusing = false;
  });
  afterAll(async () => {
    await service.stop();
    await smtp.stop();
    await proxy.close();
    await sandbox.close();
  });

  /** An infusion charted, its event heard while the server refuses the follow-up's writes; when its job failed. */
  async function infusionFailingFollowUp(end: string): Promise<{ patient: string; procedureId: string; at: number }> {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, end);
    refusing = true;
    await sendInfusionEvent(service, procedureId);
    const queue = service.app.get<Queue>(getQueueToken(QUEUES.followups));
    const job = await waitFor(async () => {
      const found = await queue.getJob(infusionJobId(procedureId));
      return found && (await found.isFailed()) && found;
    }, 'the follow-up to fail for good');
    return { patient: enrolment.patient, procedureId, at: job.finishedOn! };
  }

  /** The operator's retry once the cause is fixed; the follow-ups written. */
  async function followedUpAfterAll(procedureId: string): Promise<void> {
    refusing = false;
    await request(service.url)
      .post(`/operations/dead-letters/${infusionJobId(procedureId)}/$retry`)
      .set(service.as('admin'))
      .expect(202);
    await waitFor(async () => (await followUpTasks(service, procedureId)).length > 0, 'the follow-ups');
  }

  const looks = (at: number) => service.app.get(FailingWorkAlerts).look(new Date(at));
  const look = async (at: number) => (await looks(at))['infusion-not-followed-up'];
  const alertsOf = async (patient: string) =>
    (await service.fhir.searchAll<Communication>('Communication', { subject: patient })).filter((c) =>
      c.identifier?.some((i) => i.system === ALERT_KEY),
    );

  it('tells the clinic the check is missing once the follow-up has failed for an hour, once, and again when it is planned', async () => {
    const mailsBefore = smtp.received.length;
    const toClinic = () => mailsTo(smtp, 'oncall@clinic.test', mailsBefore);
    const { patient, procedureId, at } = await infusionFailingFollowUp('2027-03-02T10:00:00.000Z');

    // Within the hour: an outage the revivals may yet outlast; nobody told.
    expect(await look(at + 59 * MINUTE)).toEqual({ told: 0, noticed: 0 });
    expect(toClinic()).toHaveLength(0);
    expect(await alertsOf(patient)).toEqual([]);

    expect(await look(at + 61 * MINUTE)).toEqual({ told: 1, noticed: 0 });
    const [mail] = toClinic();
    expect(mail.body).toMatch(/Subject: .*post-infusion check could not be planned yet/);
    expect(mail.body).toMatch(
      /infusion on 2027-03-02 under a patient's Low-dose ketamine infusion series has no post-infusion check/,
    );
    expect(mail.body).toMatch(/keeps trying by itself and tells you once it has planned them/);
    expect(mail.body).toContain('https://careplans.clinic.test/ui');
    // By email, no patient and no record reference.
    expect(mail.body).not.toMatch(/Patient\/|Procedure\/|CarePlan\//);
    // In the EHR's inbox: the patient's, about the infusion, urgent.
    const [inbox] = (await alertsOf(patient)).filter((c) => c.recipient?.[0].reference === ON_CALL);
    expect(inbox).toMatchObject({
      status: 'completed',
      priority: 'urgent',
      subject: { reference: patient },
    });
    expect(inbox.about?.map((a) => a.reference)).toContain(`Procedure/${procedureId}`);
    expect(inbox.payload?.[0].contentString).toMatch(/This message names the patient/);

    // On the patient's page too (their timeline): told, still open, for a clinician's attention.
    const alertOnTimeline = async () =>
      (
        (
          await request(service.url)
            .get(`/patients/${patient.split('/')[1]}/timeline`)
            .set(service.as('clinician'))
            .expect(200)
        ).body as { events: { type: string; text: string; status: string; attention?: boolean }[] }
      ).events.find((e) => e.type === 'clinic-alert');
    expect(await alertOnTimeline()).toMatchObject({
      text: "Clinic told (email, EHR's inbox): an infusion's post-infusion check could not be planned yet",
      status: 'open',
      attention: true,
    });

    // Told once: the next looks, while it still fails, tell nobody again.
    expect(await look(at + 76 * MINUTE)).toEqual({ told: 0, noticed: 0 });
    expect(toClinic()).toHaveLength(1);
    expect(await alertsOf(patient)).toHaveLength(2);

    // Fixed, and retried: the clinic told it is planned now, by each channel, in answer to the alert.
    await followedUpAfterAll(procedureId);
    expect(await look(at + 91 * MINUTE)).toEqual({ told: 0, noticed: 1 });
    const notice = toClinic()[1];
    expect(notice.body).toMatch(/Subject: .*dealt with: an infusion's post-infusion check/);
    expect(notice.body).toMatch(
      /infusion on 2027-03-02 you were told of is planned now: its post-infusion check is on the worklist/,
    );
    const records = await alertsOf(patient);
    const inboxNotice = records.find((c) => c.recipient?.[0].reference === ON_CALL && c.id !== inbox.id);
    expect(inboxNotice).toMatchObject({
      priority: 'routine',
      inResponseTo: [{ reference: `Communication/${inbox.id}` }],
    });
    expect(await alertOnTimeline()).toMatchObject({ status: 'dealt with', attention: false });
    // And said once.
    expect(await look(at + 106 * MINUTE)).toEqual({ told: 0, noticed: 0 });
    expect(toClinic()).toHaveLength(2);
    const metrics = (await request(service.url).get('/metrics').set(service.as('admin')).expect(200)).text;
    expect(metrics).toMatch(
      /kc_clinic_alerts_total\{kind="infusion-not-followed-up",outcome="sent",channel="email"\} 1/,
    );
    expect(metrics).toMatch(/kc_clinic_alerts_total\{kind="resolved",outcome="sent",channel="inbox"\} [1-9]/);
  });

  it('tells nobody of a follow-up that failed for good but ran before the hour was up', async () => {
    const mailsBefore = smtp.received.length;
    const { patient, procedureId, at } = await infusionFailingFollowUp('2027-03-09T10:00:00.000Z');
    expect(await look(at + 30 * MINUTE)).toEqual({ told: 0, noticed: 0 });
    await followedUpAfterAll(procedureId);
    expect(await look(at + 61 * MINUTE)).toEqual({ told: 0, noticed: 0 });
    expect(mailsTo(smtp, 'oncall@clinic.test', mailsBefore)).toHaveLength(0);
    expect(await alertsOf(patient)).toEqual([]);
  });

  it("tells the clinic a patient's check answers are not recorded, so their effects go unseen, and again once they are", async () => {
    const mailsBefore = smtp.received.length;
    const toClinic = () => mailsTo(smtp, 'oncall@clinic.test', mailsBefore);
    const p = await infusedForCheck(service);
    // A patient portal writes the answers without the Task; the service cannot record them (its transaction refused).
    const { resource: answers } = await service.fhir.create<QuestionnaireResponse>({
      ...checkAnswers(4, ['effect-hallucinations']),
      questionnaire: `${QUESTIONNAIRE}|1.0.0`,
      subject: { reference: p.patient },
      authored: '2027-03-20T09:00:00.000Z',
      author: { reference: p.patient },
    });
    refusing = true;
    await request(service.url)
      .put(`/webhooks/fhir/QuestionnaireResponse/${answers.id}`)
      .set('x-webhook-token', 'test-webhook-secret')
      .expect(202);
    const queue = service.app.get<Queue>(getQueueToken(QUEUES.maintenance));
    const jobId = checkAnsweredElsewhereJobId(answers.id!);
    const failed = await waitFor(async () => {
      const found = await queue.getJob(jobId);
      return found && (await found.isFailed()) && found;
    }, 'recording the answers to fail for good');
    const at = failed.finishedOn!;

    expect((await looks(at + 59 * MINUTE))['answers-not-recorded']).toEqual({ told: 0, noticed: 0 });
    expect((await looks(at + 61 * MINUTE))['answers-not-recorded']).toEqual({ told: 1, noticed: 0 });
    const [mail] = toClinic();
    expect(mail.body).toMatch(/Subject: .*post-infusion check answers could not be recorded yet/);
    expect(mail.body).toMatch(/answers to their post-infusion check \(2027-03-20\) are not recorded here yet/);
    expect(mail.body).toMatch(/an effect they report is put to no clinician for review/);
    expect(mail.body).not.toMatch(/Patient\/|QuestionnaireResponse\//);
    const [inbox] = (await alertsOf(p.patient)).filter((c) => c.recipient?.[0].reference === ON_CALL);
    expect(inbox.about?.map((a) => a.reference)).toEqual([`QuestionnaireResponse/${answers.id}`]);

    // Fixed and retried: recorded, its effect put to a clinician, and the clinic told so.
    refusing = false;
    await request(service.url).post(`/operations/dead-letters/${jobId}/$retry`).set(service.as('admin')).expect(202);
    await waitFor(async () => {
      const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', { patient: p.patient });
      return issues.length > 0;
    }, 'the reported effect recorded for review');
    // Its job run to the end (its transaction lands before the job finishes; a completed one is not kept).
    await waitFor(async () => !(await queue.getJob(jobId)), 'recording the answers to finish');
    expect((await looks(at + 76 * MINUTE))['answers-not-recorded']).toEqual({ told: 0, noticed: 1 });
    // The effect itself is alerted as any reported effect is; and the notice answers this alert.
    expect(toClinic().some((m) => /Subject: .*hallucinations reported after an infusion/.test(m.body))).toBe(true);
    const notice = toClinic().find((m) =>
      /Subject: .*dealt with: a patient's post-infusion check answers/.test(m.body),
    );
    expect(notice?.body).toMatch(
      /of 2027-03-20 you were told of are recorded now: an effect they report is on the worklist/,
    );
  });

  it('tells the clinic an appointment for a session is not taken, its reminders timed from the window, and again once it is', async () => {
    const mailsBefore = smtp.received.length;
    const toClinic = () => mailsTo(smtp, 'oncall@clinic.test', mailsBefore);
    // An approved session; the scheduling system books it while the service's writes are refused.
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const approved = await approveFirstSession(service, enrolment.carePlanId);
    const start = Date.parse(protocolWindowOf(approved)!.start!) + 9 * 3_600_000;
    const { resource: appointment } = await service.fhir.create<Appointment>({
      resourceType: 'Appointment',
      status: 'booked',
      start: new Date(start).toISOString(),
      end: new Date(start + 3_600_000).toISOString(),
      participant: [{ actor: { reference: enrolment.patient }, status: 'accepted' }],
    });
    refusing = true;
    await postWebhook(service, JSON.stringify(appointment)).expect(202);
    const queue = service.app.get<Queue>(getQueueToken(QUEUES.maintenance));
    const jobId = appointmentBookedJobId(appointment.id!);
    const failed = await waitFor(async () => {
      const found = await queue.getJob(jobId);
      return found && (await found.isFailed()) && found;
    }, 'taking the appointment to fail for good');
    const at = failed.finishedOn!;

    expect((await looks(at + 59 * MINUTE))['appointment-not-booked']).toEqual({ told: 0, noticed: 0 });
    expect((await looks(at + 61 * MINUTE))['appointment-not-booked']).toEqual({ told: 1, noticed: 0 });
    const [mail] = toClinic();
    const when = new Date(start).toISOString().slice(0, 16).replace('T', ' ');
    expect(mail.body).toMatch(/Subject: .*a patient's infusion appointment is not taken here yet/);
    expect(mail.body).toContain(`An infusion appointment for ${when}`);
    expect(mail.body).toMatch(/the reminder to eat nothing for six hours before may come at the wrong time/);
    expect(mail.body).not.toMatch(/Patient\/|Appointment\//);
    const [inbox] = (await alertsOf(enrolment.patient)).filter((c) => c.recipient?.[0].reference === ON_CALL);
    expect(inbox.about?.map((a) => a.reference)).toEqual([`Appointment/${appointment.id}`]);
    // Told once while it still fails.
    expect((await looks(at + 76 * MINUTE))['appointment-not-booked']).toEqual({ told: 0, noticed: 0 });

    // Fixed and retried: the session is at the appointment's time, and the clinic told so.
    refusing = false;
    await request(service.url).post(`/operations/dead-letters/${jobId}/$retry`).set(service.as('admin')).expect(202);
    await maintenanceJobDone(service, jobId, 'taking the appointment');
    expect((await looks(at + 91 * MINUTE))['appointment-not-booked']).toEqual({ told: 0, noticed: 1 });
    const notice = toClinic().find((m) => /Subject: .*dealt with: a patient's infusion appointment/.test(m.body));
    expect(notice?.body).toContain(
      `The infusion appointment for ${when} you were told of is taken now: the session is at its time`,
    );
    expect((await looks(at + 106 * MINUTE))['appointment-not-booked']).toEqual({ told: 0, noticed: 0 });
  });

  // Last: its infusion's job is left failing on the queues the others look at.
  it("is the 15-minute sweep's: with FOLLOW_UP_FAILING_ALERT_MS=0 its first look tells the clinic", async () => {
    const { patient, procedureId } = await infusionFailingFollowUp('2027-03-16T10:00:00.000Z');
    const eager = await startTestService({
      fhirBaseUrl: proxy.baseUrl,
      clinicAlertRecipients: [ON_CALL],
      followUpFailingAlertMs: 0,
      // The same queues as the service whose job failed: this one's sweep reads them.
      queuePrefix: service.config.queuePrefix,
    });
    try {
      const job = { name: JOBS.overdueSweep, updateProgress: () => Promise.resolve() } as unknown as Job;
      const swept = (await eager.app.get(MaintenanceProcessor).process(job)) as {
        failingWork: Record<string, { told: number }>;
      };
      expect(swept.failingWork['infusion-not-followed-up'].told).toBe(1);
      const [inbox] = await alertsOf(patient);
      expect(inbox.about?.map((a) => a.reference)).toContain(`Procedure/${procedureId}`);
    } finally {
      await eager.stop();
    }
  });
});
