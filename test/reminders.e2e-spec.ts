import request from 'supertest';
import { getQueueToken } from '@nestjs/bullmq';
import type { Job, Queue } from 'bullmq';
import type { CarePlan, Communication, CommunicationRequest, DetectedIssue, Patient, Task } from '@medplum/fhirtypes';
import { QUEUES, reminderJobId, type DeliverReminderJob } from '@kc/queue';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { ReminderDelivery } from '../apps/worker/src/reminders/reminder-delivery.service';
import { ReminderSweep } from '../apps/worker/src/reminders/reminder-sweep';
import {
  actionOf,
  completeInfusion,
  enrolPatient,
  followUpTasks,
  overrideIssue,
  queueIdle,
  reportInfusion,
} from './support/clinic';
import { activeCondition, PREGNANCY } from './fixtures/patient-data';
import { startSmtpServer, type SmtpServer } from './support/smtp-server';
import { startTestService, type TestService } from './support/test-service';

const REMINDER_KEY_SYSTEM = 'https://ketamine-careplans.example/fhir/NamingSystem/reminder-key';

/**
 * Patient reminders end to end: a clinician's approval writes them (FHIR CommunicationRequests at the protocol's
 * times), the sweep turns them into delayed BullMQ jobs, each job writes a Communication (and an email over real
 * SMTP) once, a reschedule moves them and a rejection revokes them.
 */
describe('patient reminders', () => {
  let service: TestService;
  let smtp: SmtpServer;
  let reminders: Queue<DeliverReminderJob>;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    service = await startTestService({
      smtp: { url: smtp.url, from: 'Clinic <clinic@example.test>' },
      // Every reminder on record is queued by one sweep, whatever its time (the default looks an hour ahead).
      reminderHorizonMs: 800 * 24 * 3600_000,
    });
    reminders = service.app.get<Queue<DeliverReminderJob>>(getQueueToken(QUEUES.reminders));
  });
  afterAll(async () => {
    await service.stop();
    await smtp.stop();
  });

  const clinician = () => service.as('clinician');

  /** A patient with an email address, enrolled on the low-dose series starting 2027-01-01: first session Jan 2-15. */
  async function enrolledPatient(email: string, startDate?: string) {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { startDate });
    const patient = await service.fhir.read<Patient>('Patient', enrolment.patient.split('/')[1]);
    await service.fhir.update<Patient>({ ...patient, telecom: [{ system: 'email', value: email }] });
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    const session = tasks.find((t) => actionOf(t) === 'infusion-session')!;
    return { ...enrolment, session };
  }

  /** A clinician approves the session (as a prescriber: it orders the infusion). */
  function approveSession(session: Task) {
    return request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(clinician())
      .send({ versionId: session.meta!.versionId })
      .expect(200);
  }

  async function remindersOf(task: Task): Promise<CommunicationRequest[]> {
    const all = await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
      subject: task.for!.reference!,
    });
    return all.filter((r) => r.about?.some((a) => a.reference === `Task/${task.id}`));
  }

  const byKind = (requests: CommunicationRequest[]): Record<string, CommunicationRequest> =>
    Object.fromEntries(requests.map((r) => [r.category![0].coding![0].code!, r]));

  /** Fires every queued reminder job now, as if its time had come, and waits until each has finished. */
  async function timePasses(): Promise<void> {
    const delayed = await reminders.getDelayed();
    await Promise.all(delayed.map((job: Job) => job.promote()));
    await queueIdle(service, QUEUES.reminders);
  }

  it('approving a session writes its reminders at the protocol times; nothing for a Task awaiting approval', async () => {
    const p = await enrolledPatient('ada@example.test');
    expect(await remindersOf(p.session)).toEqual([]);
    const approved = await approveSession(p.session);
    expect(approved.body.restriction.period.start).toBe('2027-01-02T00:00:00.000Z');
    const written = byKind(await remindersOf(p.session));
    // fhir-profiles: a ride home 2 days before, fasting 18 h before, no driving when the session's window opens.
    expect(Object.keys(written).sort()).toEqual(['reminder-fasting', 'reminder-no-driving', 'reminder-ride-home']);
    expect(written['reminder-ride-home'].occurrenceDateTime).toBe('2026-12-31T00:00:00.000Z');
    expect(written['reminder-fasting'].occurrenceDateTime).toBe('2027-01-01T06:00:00.000Z');
    expect(written['reminder-no-driving'].occurrenceDateTime).toBe('2027-01-02T00:00:00.000Z');
    for (const r of Object.values(written)) {
      expect(r).toMatchObject({
        status: 'active',
        subject: { reference: p.patient },
        recipient: [{ reference: p.patient }],
        basedOn: [{ reference: `CarePlan/${p.carePlanId}` }],
        identifier: [{ system: REMINDER_KEY_SYSTEM }],
      });
    }
    expect(written['reminder-fasting'].payload![0].contentString).toMatch(/6 hours before/);
  });

  it('the sweep queues each reminder as a delayed job at its time, once however often it runs', async () => {
    const p = await enrolledPatient('ben@example.test');
    await approveSession(p.session);
    const sweep = service.app.get(ReminderSweep);
    await sweep.sweep();
    await sweep.sweep();
    for (const r of await remindersOf(p.session)) {
      const jobs = (await reminders.getDelayed()).filter((j) => j.data.communicationRequestId === r.id);
      expect(jobs).toHaveLength(1);
      const [job] = jobs;
      expect(job.id).toBe(reminderJobId(r.id!, r.occurrenceDateTime!));
      // Due when the reminder is: queued at job.timestamp, delayed by the time left (to the ms BullMQ took to add it).
      expect(Math.abs(job.timestamp + job.delay - Date.parse(r.occurrenceDateTime!))).toBeLessThan(1000);
    }
  });

  it('jobs lost with Redis are queued again by the next sweep: the FHIR server holds the reminders', async () => {
    const p = await enrolledPatient('gus@example.test');
    await approveSession(p.session);
    await service.app.get(ReminderSweep).sweep();
    // Redis restarted without its data: every job of the queue is gone.
    await reminders.obliterate({ force: true });
    expect(await reminders.getDelayed()).toEqual([]);
    await service.app.get(ReminderSweep).sweep();
    const queued = (await reminders.getDelayed()).map((j) => j.data.communicationRequestId).sort();
    const onRecord = (await remindersOf(p.session))
      .filter((r) => r.status === 'active')
      .map((r) => r.id)
      .sort();
    expect(onRecord).toHaveLength(3);
    expect(queued).toEqual(expect.arrayContaining(onRecord));
  });

  // Since session 54: before, the sweep's add under the failed job's id was a no-op, and the reminder never went out.
  it('a reminder whose job failed for good (the mail server down past its retries) goes out at the next sweep once the server is back, once', async () => {
    const p = await enrolledPatient('fay@example.test');
    await approveSession(p.session);
    await service.app.get(ReminderSweep).sweep();
    const mine = new Set((await remindersOf(p.session)).map((r) => r.id));
    const failed = async () => (await reminders.getFailed()).filter((j) => mine.has(j.data.communicationRequestId));
    const toFay = () => smtp.received.filter((m) => m.to.includes('fay@example.test'));
    smtp.goDown();
    try {
      await timePasses();
      expect((await failed()).map((j) => j.attemptsMade)).toEqual([...mine].map(() => service.config.jobAttempts));
      expect(toFay()).toHaveLength(0);
      // Still down: the sweep runs them again, and they fail again.
      await service.app.get(ReminderSweep).sweep();
      await timePasses();
      expect(await failed()).toHaveLength(mine.size);
    } finally {
      smtp.comeBack();
    }
    // Queued again at its time (as the job that failed was: a job fails only once its time has come).
    await service.app.get(ReminderSweep).sweep();
    await timePasses();
    expect(await failed()).toEqual([]);
    expect(toFay()).toHaveLength(mine.size);
    const sent = await service.fhir.searchAll<Communication>('Communication', { subject: p.patient });
    expect(sent).toHaveLength(mine.size);
    // Sent: the next sweep finds nothing active to send again.
    await service.app.get(ReminderSweep).sweep();
    await timePasses();
    expect(toFay()).toHaveLength(mine.size);
  });

  it('a reschedule moves the reminders; each is delivered once, at its new time, by FHIR and by email', async () => {
    const p = await enrolledPatient('cleo@example.test');
    const approved = await approveSession(p.session);
    await service.app.get(ReminderSweep).sweep();
    const before = byKind(await remindersOf(p.session));
    await request(service.url)
      .post(`/tasks/${p.session.id}/$reschedule`)
      .set(clinician())
      .send({ versionId: approved.body.meta.versionId, start: '2027-01-05T09:00:00Z', end: '2027-01-05T12:00:00Z' })
      .expect(200);
    const moved = byKind(await remindersOf(p.session));
    // The same three requests (no duplicates), moved with the session.
    expect(
      Object.values(moved)
        .map((r) => r.id)
        .sort(),
    ).toEqual(
      Object.values(before)
        .map((r) => r.id)
        .sort(),
    );
    expect(moved['reminder-ride-home'].occurrenceDateTime).toBe('2027-01-03T09:00:00.000Z');
    expect(moved['reminder-fasting'].occurrenceDateTime).toBe('2027-01-04T15:00:00.000Z');
    expect(moved['reminder-no-driving'].occurrenceDateTime).toBe('2027-01-05T09:00:00.000Z');

    await service.app.get(ReminderSweep).sweep();
    // The jobs queued for the old times fire too: they find the reminder moved and send nothing.
    await timePasses();
    const sent = await service.fhir.searchAll<Communication>('Communication', { subject: p.patient });
    expect(sent).toHaveLength(3);
    for (const r of Object.values(moved)) {
      const records = sent.filter((c) => c.basedOn?.[0]?.reference === `CommunicationRequest/${r.id}`);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({
        status: 'completed',
        about: [{ reference: `Task/${p.session.id}` }],
        medium: [{ text: 'email' }],
      });
      expect((await service.fhir.read<CommunicationRequest>('CommunicationRequest', r.id!)).status).toBe('completed');
    }
    const mails = smtp.received.filter((m) => m.to.includes('cleo@example.test'));
    expect(mails).toHaveLength(3);
    expect(mails.map((m) => /^Subject: (.*)$/m.exec(m.body)?.[1]).sort()).toEqual([
      'Reminder: arrange a ride home',
      'Reminder: no driving for 24 hours',
      'Reminder: nothing to eat or drink for 6 hours before',
    ]);
    // Each tells the patient when the session is booked (the clinic's time: UTC here), after its instruction.
    for (const mail of mails)
      expect(mail.body.replace(/=\r?\n/g, '').replace(/\r?\n/g, ' ')).toContain(
        'It is booked for Tuesday 5 January 2027 at 09:00 UTC.',
      );
    for (const record of sent)
      expect(record.payload?.at(-1)).toEqual({
        contentString: 'It is booked for Tuesday 5 January 2027 at 09:00 UTC.',
      });
  });

  it('a session rescheduled after a reminder went out: that reminder again, for the new date; the sent one stays', async () => {
    const p = await enrolledPatient('hana@example.test');
    const approved = await approveSession(p.session);
    const rideHome = byKind(await remindersOf(p.session))['reminder-ride-home'];
    await service.app.get(ReminderDelivery).deliver(rideHome.id!, rideHome.occurrenceDateTime!);
    await request(service.url)
      .post(`/tasks/${p.session.id}/$reschedule`)
      .set(clinician())
      .send({ versionId: approved.body.meta.versionId, start: '2027-01-10T09:00:00Z', end: '2027-01-10T12:00:00Z' })
      .expect(200);
    const rides = (await remindersOf(p.session)).filter((r) => r.category![0].coding![0].code === 'reminder-ride-home');
    expect(rides.map((r) => [r.status, r.occurrenceDateTime]).sort()).toEqual([
      ['active', '2027-01-08T09:00:00.000Z'],
      ['completed', '2026-12-31T00:00:00.000Z'],
    ]);
  });

  it('rejecting an approved session revokes its reminders: a job firing later sends nothing', async () => {
    const p = await enrolledPatient('dan@example.test');
    const approved = await approveSession(p.session);
    await service.app.get(ReminderSweep).sweep();
    await request(service.url)
      .post(`/tasks/${p.session.id}/$reject`)
      .set(clinician())
      .send({ versionId: approved.body.meta.versionId, reason: 'Patient moved away' })
      .expect(200);
    const revoked = await remindersOf(p.session);
    expect(revoked).toHaveLength(3);
    for (const r of revoked) {
      expect(r.status).toBe('revoked');
      expect(r.statusReason?.text).toBe('Session rejected: Patient moved away');
    }
    await timePasses();
    expect(await service.fhir.searchAll<Communication>('Communication', { subject: p.patient })).toEqual([]);
    expect(smtp.received.filter((m) => m.to.includes('dan@example.test'))).toEqual([]);
  });

  it('a session done before its reminders went out: the infusion revokes them at once, with why; nothing is sent', async () => {
    const p = await enrolledPatient('finn@example.test');
    await approveSession(p.session);
    await service.app.get(ReminderSweep).sweep();
    // The infusion happened early: the worker marks the session Task done and revokes its pending reminders with it.
    const infusion = await completeInfusion(service, p, '2027-01-01T10:00:00.000Z');
    expect(await reportInfusion(service, infusion)).toMatchObject({ status: 'created', remindersRevoked: 3 });
    expect((await service.fhir.read<Task>('Task', p.session.id!)).status).toBe('completed');
    const after = await remindersOf(p.session);
    expect(after.map((r) => [r.status, r.statusReason?.text])).toEqual(
      Array(3).fill(['revoked', `Not sent: the ${p.session.description} took place (infusion of 2027-01-01)`]),
    );
    // The jobs queued for them fire and find nothing to send.
    await timePasses();
    expect(await service.fhir.searchAll<Communication>('Communication', { subject: p.patient })).toEqual([]);
  });

  it("an approved booster a later infusion superseded: its reminders are revoked with the Task, the other Task's too", async () => {
    // High-dose: each infusion offers a next session and a booster; the next infusion fulfils one, supersedes the other.
    const p = await enrolPatient(service, 'ketamine-high-dose-as-needed');
    const first = await completeInfusion(service, p, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, first);
    const offered = (await followUpTasks(service, first)).filter((t) => actionOf(t) !== 'post-infusion-check');
    expect(offered.map(actionOf).sort()).toEqual(['maintenance-booster', 'next-induction-session']);
    for (const task of offered) await approveSession(task);
    expect((await Promise.all(offered.map(remindersOf))).flat().map((r) => r.status)).toEqual(Array(6).fill('active'));

    const second = await completeInfusion(service, p, '2027-01-20T10:00:00.000Z');
    expect(await reportInfusion(service, second)).toMatchObject({ superseded: 1, fulfilled: 1, remindersRevoked: 6 });
    for (const task of offered) {
      const answered = await service.fhir.read<Task>('Task', task.id!);
      const why =
        answered.status === 'cancelled'
          ? `Not sent: the ${task.description} is no longer planned (superseded by the infusion of 2027-01-20)`
          : `Not sent: the ${task.description} took place (infusion of 2027-01-20)`;
      expect((await remindersOf(task)).map((r) => [r.status, r.statusReason?.text])).toEqual(
        Array(3).fill(['revoked', why]),
      );
      // The Task's output names the infusion for an EHR (reference) and for a person (display).
      expect(answered.output?.at(-1)?.valueReference).toEqual({
        reference: `Procedure/${second}`,
        display: 'infusion of 2027-01-20',
      });
    }
    // The second infusion's own Tasks await approval: no reminders yet.
    const next = await followUpTasks(service, second);
    expect((await Promise.all(next.map(remindersOf))).flat()).toEqual([]);
  });

  it('a plan stopped after its session was approved: the reminders are revoked when they come due, none sent', async () => {
    const p = await enrolledPatient('ines@example.test');
    await approveSession(p.session);
    await service.app.get(ReminderSweep).sweep();
    const carePlan = await service.fhir.read<CarePlan>('CarePlan', p.carePlanId);
    await service.fhir.update<CarePlan>({ ...carePlan, status: 'revoked' });
    await timePasses();
    const after = await remindersOf(p.session);
    expect(after.map((r) => [r.status, r.statusReason?.text])).toEqual(
      Array(3).fill(['revoked', 'Not sent: its care plan was stopped (revoked)']),
    );
    expect(await service.fhir.searchAll<Communication>('Communication', { subject: p.patient })).toEqual([]);
    expect(smtp.received.filter((m) => m.to.includes('ines@example.test'))).toEqual([]);
  });

  it('a session held for a contraindication, then rejected: its reminders are revoked with it (clinic day seed 2478)', async () => {
    const p = await enrolledPatient('hana@example.test');
    await approveSession(p.session);
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], p.patient));
    await service.app.get(ContraindicationSweep).sweep();
    const held = await service.fhir.read<Task>('Task', p.session.id!);
    expect(held.status).toBe('on-hold');
    await request(service.url)
      .post(`/tasks/${p.session.id}/$reject`)
      .set(clinician())
      .send({ versionId: held.meta!.versionId, reason: 'Not while pregnant' })
      .expect(200);
    // Before session 44 they stayed active (revoked only when their delivery found the Task rejected).
    expect((await remindersOf(p.session)).map((r) => [r.status, r.statusReason?.text])).toEqual([
      ['revoked', 'Session rejected: Not while pregnant'],
      ['revoked', 'Session rejected: Not while pregnant'],
      ['revoked', 'Session rejected: Not while pregnant'],
    ]);
  });

  it('a pregnancy recorded after the session was approved: its reminders are held, not sent, while the contraindication awaits a clinician; the override sends them', async () => {
    const p = await enrolledPatient('nadia@example.test');
    await approveSession(p.session);
    await service.app.get(ReminderSweep).sweep();
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], p.patient));
    await service.app.get(ContraindicationSweep).sweep();
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${p.carePlanId}`,
    });
    expect(issue.code?.coding?.[0].code).toBe('pregnancy');
    await timePasses();
    // Still active (a clinician may override and go ahead), none delivered.
    expect((await remindersOf(p.session)).map((r) => r.status)).toEqual(['active', 'active', 'active']);
    expect(await service.fhir.searchAll<Communication>('Communication', { subject: p.patient })).toEqual([]);
    expect(smtp.received.filter((m) => m.to.includes('nadia@example.test'))).toEqual([]);
    // The clinician overrides: the session is released, and its reminders, whose jobs ran while it was held, go out.
    await overrideIssue(service, issue, 'Test negative today').expect(200);
    expect((await service.fhir.read<Task>('Task', p.session.id!)).status).toBe('ready');
    await timePasses();
    expect((await remindersOf(p.session)).map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
    expect(await service.fhir.searchAll<Communication>('Communication', { subject: p.patient })).toHaveLength(3);
    expect(smtp.received.filter((m) => m.to.includes('nadia@example.test'))).toHaveLength(3);
  });

  it('a session booked 2.5 hours ahead: the fasting reminder still goes out, recorded as short notice for the clinic to act on', async () => {
    // Enrolled yesterday: the first session's window opened at midnight (UTC), and the clinic books it 2.5 hours ahead.
    const p = await enrolledPatient('otto@example.test', new Date(Date.now() - 86_400_000).toISOString().slice(0, 10));
    const approved = await approveSession(p.session);
    const start = new Date(Math.ceil((Date.now() + 2.5 * 3600_000) / 60_000) * 60_000);
    await request(service.url)
      .post(`/tasks/${p.session.id}/$reschedule`)
      .set(clinician())
      .send({
        versionId: approved.body.meta.versionId,
        start: start.toISOString(),
        end: new Date(start.getTime() + 3 * 3600_000).toISOString(),
      })
      .expect(200);
    const written = byKind(await remindersOf(p.session));
    const delivery = service.app.get(ReminderDelivery);
    // Both were due before the booking (18 h and 2 days ahead of it): they go out at once.
    const fasting = await delivery.deliver(
      written['reminder-fasting'].id!,
      written['reminder-fasting'].occurrenceDateTime!,
    );
    const rideHome = await delivery.deliver(
      written['reminder-ride-home'].id!,
      written['reminder-ride-home'].occurrenceDateTime!,
    );
    const late = new RegExp(
      `^Sent 2 h (2\\d|30) min before the window of “First infusion session” opened \\(${start.toISOString().slice(0, 10)} ` +
        `${start.toISOString().slice(11, 16)} UTC\\); this instruction needs 6 hours of notice: confirm with the patient before the infusion\\.$`,
    );
    expect(fasting).toMatchObject({ status: 'sent', channels: ['email'], why: expect.stringMatching(late) });
    // A ride home needs no notice of its own (fhir-profiles): sent late, with nothing to confirm.
    expect(rideHome).toEqual({ status: 'sent', channels: ['email'] });
    expect(smtp.received.filter((m) => m.to.includes('otto@example.test'))).toHaveLength(2);

    // On record for an EHR (Communication.note, CommunicationRequest.note) and on the clinician's patient view.
    const [record] = await service.fhir.searchAll<Communication>('Communication', {
      'based-on': `CommunicationRequest/${written['reminder-fasting'].id}`,
    });
    expect(record.note?.[0].text).toMatch(late);
    const request_ = await service.fhir.read<CommunicationRequest>(
      'CommunicationRequest',
      written['reminder-fasting'].id!,
    );
    expect(request_).toMatchObject({ status: 'completed', note: [{ text: expect.stringMatching(late) }] });
    const timeline = await request(service.url)
      .get(`/patients/${p.patient.split('/')[1]}/timeline`)
      .set(clinician())
      .expect(200);
    const events = timeline.body.events as { type: string; text: string; reason?: string; attention?: boolean }[];
    expect(events.filter((e) => e.type === 'reminder' && e.attention)).toEqual([
      expect.objectContaining({
        text: 'Reminder: nothing to eat or drink for 6 hours before',
        reason: expect.stringMatching(late),
      }),
    ]);
  });

  it('previews a reschedule: dates that would send the fasting reminder too late are named before anything is written', async () => {
    const p = await enrolledPatient('pia@example.test');
    const preview = (start: string, end: string) =>
      request(service.url).get(`/tasks/${p.session.id}/reminder-notice`).query({ start, end }).set(clinician());
    // Its own window, weeks ahead: every reminder gives its notice.
    expect((await preview('2027-01-02T00:00:00Z', '2027-01-15T00:00:00Z').expect(200)).body).toEqual({});
    // Booked for today, whose day began hours ago: the fasting reminder would go out after the session's window opened.
    const today = new Date().toISOString().slice(0, 10);
    expect((await preview(`${today}T00:00:00Z`, `${today}T23:59:59Z`).expect(200)).body).toEqual({
      notice:
        'Rescheduling to these dates sends “Reminder: nothing to eat or drink for 6 hours before” after the window ' +
        'opened; it needs 6 hours of notice.',
    });
    // A preview writes nothing.
    expect(await remindersOf(p.session)).toEqual([]);
    expect((await service.fhir.read<Task>('Task', p.session.id!)).meta?.versionId).toBe(p.session.meta?.versionId);
    await preview('tomorrow', '2027-01-15T00:00:00Z').expect(400);
    await preview('2027-01-15T00:00:00Z', '2027-01-02T00:00:00Z').expect(400);
    await request(service.url)
      .get('/tasks/no-such-task/reminder-notice')
      .query({ start: '2027-01-02T00:00:00Z', end: '2027-01-03T00:00:00Z' })
      .set(clinician())
      .expect(404);
    await request(service.url)
      .get(`/tasks/${p.session.id}/reminder-notice`)
      .query({ start: '2027-01-02T00:00:00Z', end: '2027-01-03T00:00:00Z' })
      .set(service.as('integration'))
      .expect(403);
  });

  it('two deliveries of the same reminder at once record one Communication', async () => {
    const p = await enrolledPatient('eve@example.test');
    await approveSession(p.session);
    const [reminder] = await remindersOf(p.session);
    const delivery = service.app.get(ReminderDelivery);
    const outcomes = await Promise.all([
      delivery.deliver(reminder.id!, reminder.occurrenceDateTime!),
      delivery.deliver(reminder.id!, reminder.occurrenceDateTime!),
    ]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['already-done', 'sent']);
    const records = await service.fhir.searchAll<Communication>('Communication', {
      'based-on': `CommunicationRequest/${reminder.id}`,
    });
    expect(records).toHaveLength(1);
  });
});
