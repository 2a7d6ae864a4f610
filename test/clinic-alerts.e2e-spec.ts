import request from 'supertest';
import type { CarePlan, Communication, DetectedIssue, MedicationRequest, Patient, Task } from '@medplum/fhirtypes';
import { getQueueToken } from '@nestjs/bullmq';
import type { Job, Queue } from 'bullmq';
import { infusionJobId, InfusionEventsProducer, JOBS, QUEUES } from '@kc/queue';
import { MaintenanceProcessor } from '../apps/worker/src/maintenance/maintenance.processor';
import { ClinicAlerts } from '../apps/worker/src/alerts/clinic-alerts.service';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { approvedSessionOrder, checkAnswers, infusedForCheck } from './support/checks';
import {
  actionOf,
  completeInfusion,
  enrolPatient,
  followUpJobDone,
  followUpTasks,
  overrideIssue,
  reportInfusion,
  reviewedInEhr,
  sendInfusionEvent,
  waitFor,
} from './support/clinic';
import { activeCondition, bloodPressure, PREGNANCY } from './fixtures/patient-data';
import {
  mailsTo,
  readable,
  serviceWithMailDown,
  startSmtpServer,
  type SmtpServer,
  serviceEmailingClinic,
} from './support/smtp-server';
import { startTestService, type TestService } from './support/test-service';

const ALERT_KEY = 'https://ketamine-careplans.example/fhir/NamingSystem/clinic-alert-key';

/**
 * The clinic is told at once, by email, when a patient reports an effect that waits for a clinician's review, and when
 * a contraindication found after approval holds an approved order (CLINIC_ALERT_EMAIL): once per issue, with no
 * patient named, and the sending recorded as a FHIR Communication.
 */
describe('alerts to the clinic', () => {
  let service: TestService;
  let smtp: SmtpServer;
  beforeAll(async () => {
    smtp = await startSmtpServer();
    service = await serviceEmailingClinic(smtp, {
      publicUrl: 'https://careplans.clinic.test',
    });
  });
  afterAll(async () => {
    await service.stop();
    await smtp.stop();
  });

  /** The emails to the clinic, as read. */
  const toClinic = () => mailsTo(smtp, 'oncall@clinic.test');

  const complete = (task: Task, effects: string[]) =>
    request(service.url)
      .post(`/tasks/${task.id}/$complete`)
      .set(service.as('clinician'))
      .send({ versionId: task.meta!.versionId, response: checkAnswers(3, effects) });

  /** The clinic closes everything else on the plan: only the infusion's check is left open. */
  async function onlyTheCheckLeft(p: { carePlanId: string; check: Task }) {
    const open = await service.fhir.searchAll<Task>('Task', {
      'based-on': `CarePlan/${p.carePlanId}`,
      status: 'draft,ready',
    });
    for (const task of open.filter((t) => t.id !== p.check.id))
      await request(service.url)
        .post(`/tasks/${task.id}/$reject`)
        .set(service.as('clinician'))
        .send({ versionId: task.meta!.versionId, reason: 'Series ended early at the patient request' })
        .expect(200);
  }

  it('an effect to review: the clinic is emailed once, naming no patient, and the email is on record', async () => {
    const before = toClinic().length;
    const p = await infusedPatient();
    await complete(p.check, ['effect-hallucinations', 'effect-nausea']).expect(200);
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${p.carePlanId}`,
    });
    const [mail] = await waitFor(() => {
      const mails = toClinic().slice(before);
      return Promise.resolve(mails.length > 0 && mails);
    }, 'the alert email to the clinic');
    expect(mail.body).toMatch(/Subject: Ketamine care plans: hallucinations reported after an infusion, to review/);
    expect(mail.body).toMatch(/A patient reported hallucinations at their post-infusion check of \d{4}-\d{2}-\d{2}\./);
    expect(mail.body).toContain('https://careplans.clinic.test/ui');
    // No patient in it: not their name, not their id, not their plan's.
    const patient = await service.fhir.read<Patient>('Patient', p.patient.split('/')[1]);
    expect(mail.body).not.toContain(patient.name![0].family!);
    expect(mail.body).not.toContain(patient.id!);
    expect(mail.body).not.toContain(p.carePlanId);

    // On record, as an EHR reads a message sent: about the issue and its plan, by email, to whom, what it said.
    const [record] = await waitFor(async () => {
      const found = await service.fhir.searchAll<Communication>('Communication', {
        identifier: `${ALERT_KEY}|DetectedIssue/${issue.id}`,
      });
      return found.length > 0 && found;
    }, 'the alert on record');
    expect(record).toMatchObject({
      status: 'completed',
      priority: 'urgent',
      category: [{ coding: [{ code: 'clinic-alert' }] }],
      medium: [{ coding: [{ code: 'EMAILWRIT' }] }],
      subject: { reference: p.patient },
      about: [{ reference: `DetectedIssue/${issue.id}` }, { reference: `CarePlan/${p.carePlanId}` }],
      recipient: [{ display: 'oncall@clinic.test' }],
    });

    // The sweep looks again (every 15 minutes): the clinic, told already, is not emailed again.
    await service.app.get(ContraindicationSweep).sweep();
    expect(toClinic().slice(before)).toHaveLength(1);
  });

  it('a plan with nothing else open: its check was the last Task, and the clinic still hears of the effect', async () => {
    const p = await infusedPatient();
    await onlyTheCheckLeft(p);
    const before = toClinic().length;
    await complete(p.check, ['effect-raised-blood-pressure']).expect(200);
    const [mail] = await waitFor(() => {
      const mails = toClinic().slice(before);
      return Promise.resolve(mails.length > 0 && mails);
    }, 'the alert email for a plan with no open Task');
    expect(mail.body).toContain('A patient reported raised blood pressure at their post-infusion check');
  });

  it('reviewed in the EHR on a plan with nothing open, its notice not sent by a job: the sweep sends it, once', async () => {
    const p = await infusedPatient();
    await onlyTheCheckLeft(p);
    const before = toClinic().length;
    await complete(p.check, ['effect-hallucinations']).expect(200);
    await waitFor(() => Promise.resolve(toClinic().length > before), 'the alert email');
    // Reviewed in the EHR (no $override here, no notification: the embedded server sends none, and no poll runs).
    await reviewedInEhr(service, p.carePlanId, 'Called the patient: settled');
    expect(toClinic().slice(before)).toHaveLength(1);

    // The plan has no open Task left: the sweep looks at what was resolved lately all the same.
    await service.app.get(ContraindicationSweep).sweep();
    const mails = toClinic().slice(before);
    expect(mails).toHaveLength(2);
    expect(mails[1].body).toMatch(/Subject: Ketamine care plans: reviewed: hallucinations reported after an infusion/);
    await service.app.get(ContraindicationSweep).sweep();
    expect(toClinic().slice(before)).toHaveLength(2);
  });

  // Since session 51; before, only a log line said so.
  it('an infusion charted under a plan the EHR recorded in error: no check is planned, and the clinic is told so, once, naming no patient', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const plan = await service.fhir.read<CarePlan>('CarePlan', enrolment.carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'entered-in-error' });
    const before = toClinic().length;
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    expect(await reportInfusion(service, procedureId)).toMatchObject({ status: 'ignored' });
    const mails = toClinic().slice(before);
    expect(mails).toHaveLength(1);
    expect(mails[0].body).toContain(
      'Subject: Ketamine care plans: an infusion charted under a care plan recorded in error; no post-infusion check planned',
    );
    expect(mails[0].body).toContain(
      "A ketamine infusion on 2027-01-04 was charted under a patient's Low-dose ketamine infusion series, but its care plan was entered in error: nothing is planned under a plan recorded in error, so no post-infusion check was proposed for this infusion.",
    );
    const patient = await service.fhir.read<Patient>('Patient', enrolment.patient.split('/')[1]);
    expect(mails[0].body).not.toContain(patient.name![0].family!);
    expect(mails[0].body).not.toContain(patient.id!);
    // On record, as an EHR reads a message sent: about the infusion and its plan.
    const records = await service.fhir.searchAll<Communication>('Communication', {
      identifier: `${ALERT_KEY}|infusion-under-closed-plan:Procedure/${procedureId}`,
    });
    expect(records.map((c) => c.about)).toEqual([
      [{ reference: `Procedure/${procedureId}` }, { reference: `CarePlan/${enrolment.carePlanId}` }],
    ]);
    // Its job run again: not told again.
    await service.app.get(InfusionEventsProducer).followUpAgain(procedureId);
    expect(await followUpJobDone(service, procedureId)).toMatchObject({ status: 'ignored' });
    expect(toClinic().slice(before)).toHaveLength(1);

    // An infusion followed up before its plan was recorded in error, heard again since (the EHR edited it): it had
    // its check.
    const p = await infusedPatient();
    const inError = await service.fhir.read<CarePlan>('CarePlan', p.carePlanId);
    await service.fhir.update<CarePlan>({ ...inError, status: 'entered-in-error' });
    const since = toClinic().length;
    await service.app.get(InfusionEventsProducer).followUpAgain(p.procedureId);
    expect(await followUpJobDone(service, p.procedureId)).toMatchObject({ status: 'ignored' });
    expect(toClinic().slice(since)).toHaveLength(0);
  });

  // Since session 52 (from 51, no check and the alert above).
  it('an infusion charted under a plan the EHR stopped or completed: its post-infusion check is proposed, nothing else, and nobody is emailed', async () => {
    for (const status of ['revoked', 'completed'] as const) {
      const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
      const plan = await service.fhir.read<CarePlan>('CarePlan', enrolment.carePlanId);
      await service.fhir.update<CarePlan>({ ...plan, status });
      const before = toClinic().length;
      const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
      expect(await reportInfusion(service, procedureId)).toMatchObject({
        status: 'created',
        tasks: [expect.any(String)],
      });
      expect((await followUpTasks(service, procedureId)).map((t) => [actionOf(t), t.status])).toEqual([
        ['post-infusion-check', 'draft'],
      ]);
      // The plan lists it, as the EHR set it otherwise.
      const after = await service.fhir.read<CarePlan>('CarePlan', enrolment.carePlanId);
      expect(after.status).toBe(status);
      expect(toClinic().slice(before)).toEqual([]);
      // Heard again: nothing twice.
      await service.app.get(InfusionEventsProducer).followUpAgain(procedureId);
      await followUpJobDone(service, procedureId);
      expect(await followUpTasks(service, procedureId)).toHaveLength(1);
    }
  });

  it("a contraindication found in the patient's data is not emailed: the approving clinician is told, on the page", async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    await service.fhir.create(activeCondition(...PREGNANCY, enrolment.patient));
    const sent = toClinic().length;
    // The sweep records it on the plan (an unresolved DetectedIssue, as a reported effect is) and tells nobody.
    await service.app.get(ContraindicationSweep).sweep();
    const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${enrolment.carePlanId}`,
    });
    expect(issues.map((i) => i.code?.coding?.[0]?.code)).toEqual(['pregnancy']);
    expect(toClinic()).toHaveLength(sent);
    const records = await service.fhir.searchAll<Communication>('Communication', { subject: enrolment.patient });
    expect(records.filter((c) => c.identifier?.some((i) => i.system === ALERT_KEY))).toEqual([]);
  });

  it('a contraindication found after approval (the sweep): the order is held and the clinic told once, with when the session is due', async () => {
    const p = await infusedPatient();
    const order = await approvedSessionOrder(service, p.session);
    const due = (await service.fhir.read<Task>('Task', p.session.id!)).restriction!.period!.start!;
    await service.fhir.create(activeCondition(...PREGNANCY, p.patient));
    const before = toClinic().length;
    const sweep = service.app.get(ContraindicationSweep);
    expect(await sweep.sweep()).toMatchObject({ held: 1 });
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
    const mails = toClinic().slice(before);
    expect(mails).toHaveLength(1);
    const [mail] = mails;
    expect(mail.body).toMatch(/Subject: Ketamine care plans: an approved infusion is on hold \(pregnancy/);
    expect(mail.body).toContain('after their ketamine infusion was approved: Pregnancy');
    expect(mail.body).toContain('Their approved order is on hold, with the Task, so nothing is to be given');
    expect(mail.body).toContain(`The held session is due from ${due.slice(0, 10)}.`);
    expect(mail.body).toContain('https://careplans.clinic.test/ui');
    const patient = await service.fhir.read<Patient>('Patient', p.patient.split('/')[1]);
    for (const named of [patient.name![0].family!, patient.id!, p.carePlanId, order.id!, p.session.id!])
      expect(mail.body).not.toContain(named);

    // On record, about the issue and what it holds; the next sweep tells nobody again.
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `MedicationRequest/${order.id}`,
    });
    const [record] = await service.fhir.searchAll<Communication>('Communication', {
      identifier: `${ALERT_KEY}|DetectedIssue/${issue.id}`,
    });
    expect(record.about?.map((r) => r.reference)).toEqual([
      `DetectedIssue/${issue.id}`,
      `CarePlan/${p.carePlanId}`,
      `MedicationRequest/${order.id}`,
      `Task/${p.session.id}`,
    ]);
    expect(record.topic?.text).toMatch(/^Ketamine care plans: an approved infusion is on hold/);
    await sweep.sweep();
    expect(toClinic().slice(before)).toHaveLength(1);
  });

  it('a blood pressure notified by the FHIR server after approval: the order is held and the clinic told at once, without a sweep', async () => {
    const p = await infusedPatient();
    const order = await approvedSessionOrder(service, p.session);
    const before = toClinic().length;
    const { resource: pressure } = await service.fhir.create(
      bloodPressure(195, 115, new Date().toISOString(), p.patient),
    );
    // HAPI's rest-hook: PUT {endpoint}/Observation/{id}, no body.
    await request(service.url)
      .put(`/webhooks/fhir/Observation/${pressure.id}`)
      .set('x-webhook-token', 'test-webhook-secret')
      .expect(202);
    const [mail] = await waitFor(() => {
      const mails = toClinic().slice(before);
      return Promise.resolve(mails.length > 0 && mails);
    }, 'the hold alert email to the clinic');
    expect(mail.body).toMatch(/Subject: Ketamine care plans: an approved infusion is on hold \(/);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
  });

  it("a contraindication found by an approval's re-check: the refused clinician sees it, and the clinic is emailed of the order it holds", async () => {
    const p = await infusedPatient();
    const order = await approvedSessionOrder(service, p.session);
    await service.fhir.create(activeCondition(...PREGNANCY, p.patient));
    const before = toClinic().length;
    // Approving the booster re-checks the patient's data: refused, and the session's order held at once, which the
    // refusal says.
    const refused = await request(service.url)
      .post(`/tasks/${p.booster.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: p.booster.meta!.versionId })
      .expect(422);
    expect(refused.body.issue[0].details.text).toMatch(
      /^Blocked by an unresolved contraindication on this care plan: .*An order approved before under this care plan is on hold until then\.$/,
    );
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
    // No sweep runs here: the plan's hold job, queued by the API, tells the clinic.
    const [mail] = await waitFor(() => {
      const mails = toClinic().slice(before);
      return Promise.resolve(mails.length > 0 && mails);
    }, 'the hold alert email after a refused approval');
    expect(mail.body).toMatch(/Subject: Ketamine care plans: an approved infusion is on hold \(pregnancy/);
  });

  it('two looks at the same moment (an alert job and the sweep, once the mail server is back) email the clinic once', async () => {
    const { mail, cut } = await serviceWithMailDown();
    try {
      const p = await infusedForCheck(cut);
      await request(cut.url)
        .post(`/tasks/${p.check.id}/$complete`)
        .set(cut.as('clinician'))
        .send({ versionId: p.check.meta!.versionId, response: checkAnswers(3, ['effect-hallucinations']) })
        .expect(200);
      const [issue] = await waitFor(async () => {
        const found = await cut.fhir.searchAll<DetectedIssue>('DetectedIssue', {
          implicated: `CarePlan/${p.carePlanId}`,
        });
        return found.length > 0 && found;
      }, 'the effect to review');
      mail.comeBack();
      const alerts = cut.app.get(ClinicAlerts);
      const sent = await Promise.all([alerts.tell([issue]), alerts.tell([issue]), alerts.tell([issue])]);
      expect(sent.reduce((a, b) => a + b, 0)).toBe(1);
      expect(mail.received.map((m) => m.to)).toEqual([['oncall@clinic.test']]);
    } finally {
      await cut.stop();
      await mail.stop();
    }
  });

  it('the mail server down: the plan is still held and the sweep still runs; the email goes once the server is back', async () => {
    const { mail, cut } = await serviceWithMailDown();
    try {
      const p = await infusedForCheck(cut);
      const order = await approvedSessionOrder(cut, p.session);
      await request(cut.url)
        .post(`/tasks/${p.check.id}/$complete`)
        .set(cut.as('clinician'))
        .send({ versionId: p.check.meta!.versionId, response: checkAnswers(3, ['effect-hallucinations']) })
        .expect(200);
      await waitFor(
        async () => (await cut.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status === 'on-hold',
        'the approved order held although the alert could not be sent',
      );
      const outcome = await cut.app.get(ContraindicationSweep).sweep();
      expect(outcome.alerted).toBe(0);
      // What an operator alerts on: emails to the clinic not sent.
      const alertMetric = (outcome: string) => effectAlerts(cut, 'email', outcome);
      // (The plan's alert job may be failing still: the sweep leaves the alert to it meanwhile.)
      await waitFor(async () => (await alertMetric('not-sent')) >= 1, 'an email to the clinic counted as not sent');
      expect(await alertMetric('sent')).toBe(0);
      const alertsOf = async () =>
        (await cut.fhir.searchAll<Communication>('Communication', { subject: p.patient })).filter((c) =>
          c.identifier?.some((i) => i.system === ALERT_KEY),
        );
      expect(await alertsOf()).toEqual([]);
      // The mail server is back: the next sweep sends it, and records it.
      mail.comeBack();
      expect((await cut.app.get(ContraindicationSweep).sweep()).alerted).toBe(1);
      expect(mail.received.map((m) => m.to)).toEqual([['oncall@clinic.test']]);
      expect(await alertsOf()).toHaveLength(1);
      expect(await alertMetric('sent')).toBe(1);
    } finally {
      await cut.stop();
      await mail.stop();
    }
  });

  const infusedPatient = () => infusedForCheck(service);
});

/** One run of the 15-minute sweep (the maintenance queue's overdue sweep), as its job runs it; its result. */
async function overdueSweep(service: TestService): Promise<unknown> {
  const job = { name: JOBS.overdueSweep, updateProgress: () => Promise.resolve() } as unknown as Job;
  return service.app.get(MaintenanceProcessor).process(job);
}

/** What an operator alerts on: alerts of reported effects by channel and outcome (kc_clinic_alerts_total). */
async function effectAlerts(service: TestService, channel: string, outcome: string): Promise<number> {
  const text = (await request(service.url).get('/metrics').set(service.as('admin')).expect(200)).text;
  const line = new RegExp(
    `^kc_clinic_alerts_total\\{kind="effect-reported",outcome="${outcome}",channel="${channel}"\\} (\\d+)$`,
    'm',
  );
  return Number(line.exec(text)?.[1] ?? 0);
}

/**
 * In the EHR's inbox (CLINIC_ALERT_RECIPIENTS): the alert is a Communication to the clinic's on-call role, written to
 * the FHIR server, which is where Medplum's messaging or an EHR's inbox shows it; beside email or without it, each
 * channel told once and on its own.
 */
describe("alerts to the clinic in the EHR's inbox", () => {
  const ON_CALL = 'PractitionerRole/on-call';

  const alertsOf = async (service: TestService, patient: string) =>
    (await service.fhir.searchAll<Communication>('Communication', { subject: patient })).filter((c) =>
      c.identifier?.some((i) => i.system === ALERT_KEY),
    );

  const reportEffect = async (service: TestService) => {
    const p = await infusedForCheck(service);
    await request(service.url)
      .post(`/tasks/${p.check.id}/$complete`)
      .set(service.as('clinician'))
      .send({ versionId: p.check.meta!.versionId, response: checkAnswers(3, ['effect-hallucinations']) })
      .expect(200);
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${p.carePlanId}`,
    });
    return { ...p, issue };
  };

  it('without email: a Communication to the on-call role, once, as a message in the inbox', async () => {
    const service = await startTestService({ clinicAlertRecipients: [ON_CALL] });
    try {
      const p = await reportEffect(service);
      const [message] = await waitFor(async () => {
        const found = await alertsOf(service, p.patient);
        return found.length > 0 && found;
      }, 'the alert in the inbox');
      expect(message).toMatchObject({
        identifier: [{ system: ALERT_KEY, value: `inbox:DetectedIssue/${p.issue.id}` }],
        status: 'completed',
        priority: 'urgent',
        category: [{ coding: [{ code: 'clinic-alert' }] }],
        medium: [{ coding: [{ code: 'ELECTRONIC' }] }],
        subject: { reference: p.patient },
        about: [{ reference: `DetectedIssue/${p.issue.id}` }, { reference: `CarePlan/${p.carePlanId}` }],
        recipient: [{ reference: ON_CALL }],
        topic: { text: 'Ketamine care plans: hallucinations reported after an infusion, to review' },
      });
      // In the EHR the message is the patient's (its subject): it does not say it names none.
      expect(message.payload?.[0].contentString).toMatch(/^A patient reported hallucinations at their post-infusion/);
      expect(message.payload?.[0].contentString).not.toMatch(/names no patient/);
      // The sweep looks again: told already, not again.
      expect((await service.app.get(ContraindicationSweep).sweep()).alerted).toBe(0);
      expect(await alertsOf(service, p.patient)).toHaveLength(1);
    } finally {
      await service.stop();
    }
  });

  it('beside email, with the mail server down: the inbox is told at once, the email once the server is back', async () => {
    const { mail, cut: service } = await serviceWithMailDown({ clinicAlertRecipients: [ON_CALL] });
    try {
      const p = await reportEffect(service);
      const keys = async () =>
        (await alertsOf(service, p.patient)).map((c) => c.identifier?.[0].value).sort((a, b) => a!.localeCompare(b!));
      await waitFor(async () => (await keys()).length > 0, 'the alert in the inbox');
      expect(await keys()).toEqual([`inbox:DetectedIssue/${p.issue.id}`]);
      const metric = (channel: string, outcome: string) => effectAlerts(service, channel, outcome);
      expect(await metric('inbox', 'sent')).toBe(1);
      expect(await metric('email', 'not-sent')).toBeGreaterThanOrEqual(1);
      mail.comeBack();
      expect((await service.app.get(ContraindicationSweep).sweep()).alerted).toBe(1);
      expect(mail.received.map((m) => m.to)).toEqual([['oncall@clinic.test']]);
      expect(await keys()).toEqual([`DetectedIssue/${p.issue.id}`, `inbox:DetectedIssue/${p.issue.id}`]);
      expect(await metric('inbox', 'sent')).toBe(1);
    } finally {
      await service.stop();
      await mail.stop();
    }
  });

  /**
   * An infusion charted under a plan the EHR recorded in error, its job's attempts spent on the email (a mail server
   * down); the inbox was told at its first attempt.
   */
  async function untoldUnderPlanInError(service: TestService) {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const plan = await service.fhir.read<CarePlan>('CarePlan', enrolment.carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, status: 'entered-in-error' });
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await sendInfusionEvent(service, procedureId);
    const queue = service.app.get<Queue>(getQueueToken(QUEUES.followups));
    const job = await waitFor(async () => {
      const found = await queue.getJob(infusionJobId(procedureId));
      return found?.finishedOn !== undefined && found;
    }, 'the follow-up job to fail for good');
    expect(job.attemptsMade).toBe(service.config.jobAttempts);
    expect(job.failedReason).toMatch(/Mail server down/);
    const keys = async () =>
      (await alertsOf(service, enrolment.patient))
        .map((c) => c.identifier?.[0].value)
        .sort((a, b) => a!.localeCompare(b!));
    const about = `infusion-under-closed-plan:Procedure/${procedureId}`;
    expect(await keys()).toEqual([`inbox:${about}`]);
    return { enrolment, keys, about };
  }
  /** The sweep's count of infusions under plans in error the clinic was told of, as it owed them. */
  const closedPlanAlertsTold = async (service: TestService) =>
    ((await overdueSweep(service)) as { closedPlanAlertsTold: number }).closedPlanAlertsTold;

  // Since session 54: before, once the infusion's job had spent its retries, nothing sent the email.
  it('an infusion under a plan recorded in error, the mail server down past its job’s retries: the inbox told at once, the email by the sweep once the server is back, once', async () => {
    const { mail, cut: service } = await serviceWithMailDown({ clinicAlertRecipients: [ON_CALL] });
    try {
      const { keys, about } = await untoldUnderPlanInError(service);
      // The sweep while the server is still down: not told, still owed.
      expect(await closedPlanAlertsTold(service)).toBe(0);
      expect(mail.received).toHaveLength(0);
      mail.comeBack();
      expect(await closedPlanAlertsTold(service)).toBe(1);
      expect(mail.received.map((m) => m.to)).toEqual([['oncall@clinic.test']]);
      expect(readable(mail.received[0]).body).toContain(
        'Subject: Ketamine care plans: an infusion charted under a care plan recorded in error; no post-infusion check planned',
      );
      expect(await keys()).toEqual([`inbox:${about}`, about]);
      // Told: the next sweep has nothing owed, and sends nothing again.
      expect(await closedPlanAlertsTold(service)).toBe(0);
      expect(mail.received).toHaveLength(1);
    } finally {
      await service.stop();
      await mail.stop();
    }
  });

  it('an alert owed for an infusion under a plan in error is not sent once the EHR has put the plan right', async () => {
    const { mail, cut: service } = await serviceWithMailDown({ clinicAlertRecipients: [ON_CALL] });
    try {
      const { enrolment, keys, about } = await untoldUnderPlanInError(service);
      const plan = await service.fhir.read<CarePlan>('CarePlan', enrolment.carePlanId);
      await service.fhir.update<CarePlan>({ ...plan, status: 'active' });
      mail.comeBack();
      expect(await closedPlanAlertsTold(service)).toBe(0);
      expect(mail.received).toHaveLength(0);
      expect(await keys()).toEqual([`inbox:${about}`]);
    } finally {
      await service.stop();
      await mail.stop();
    }
  });

  it('reviewed: whoever was alerted is told once that it is dealt with, the inbox answering the alert with what was decided', async () => {
    const smtp = await startSmtpServer();
    const service = await serviceEmailingClinic(smtp, {
      clinicAlertRecipients: [ON_CALL],
    });
    try {
      const p = await reportEffect(service);
      const byKey = async () =>
        new Map((await alertsOf(service, p.patient)).map((c) => [c.identifier?.[0].value, c] as const));
      await waitFor(async () => (await byKey()).size === 2, 'the alert by email and in the inbox');
      const alert = (await byKey()).get(`inbox:DetectedIssue/${p.issue.id}`)!;
      // Not before it is dealt with: the sweep looks and sends no notice.
      await service.app.get(ContraindicationSweep).sweep();
      expect((await byKey()).size).toBe(2);

      await overrideIssue(service, p.issue, 'Called the patient: gone by the evening. Go on.').expect(200);
      await waitFor(async () => (await byKey()).size === 4, 'the notices that it is dealt with');
      const notices = await byKey();
      const inbox = notices.get(`inbox:resolved:DetectedIssue/${p.issue.id}`)!;
      expect(inbox).toMatchObject({
        status: 'completed',
        priority: 'routine',
        inResponseTo: [{ reference: `Communication/${alert.id}` }],
        recipient: [{ reference: ON_CALL }],
        topic: { text: 'Ketamine care plans: reviewed: hallucinations reported after an infusion' },
      });
      expect(inbox.payload?.[0].contentString).toContain('What was decided: ');
      expect(inbox.payload?.[0].contentString).toContain('Called the patient: gone by the evening. Go on.');
      const mails = smtp.received.map((m) => readable(m).body);
      expect(mails).toHaveLength(2);
      expect(mails[1]).toMatch(/Subject: Ketamine care plans: reviewed: hallucinations reported after an infusion/);
      // By email, neither the patient nor the clinician's words (they may name the patient).
      expect(mails[1]).not.toContain('Called the patient');
      expect(notices.get(`resolved:DetectedIssue/${p.issue.id}`)?.recipient).toEqual([
        { display: 'oncall@clinic.test' },
      ]);

      // Told once: the sweep looks again and sends nothing more.
      await service.app.get(ContraindicationSweep).sweep();
      expect((await byKey()).size).toBe(4);
      expect(smtp.received).toHaveLength(2);
    } finally {
      await service.stop();
      await smtp.stop();
    }
  });
});
