import request from 'supertest';
import type { Appointment, CommunicationRequest, DetectedIssue, Provenance, Task } from '@medplum/fhirtypes';
import { appointmentBookedJobId, sessionApprovedJobId } from '@kc/queue';
import { protocolWindowOf } from '@kc/protocols';
import { AppointmentPoller } from '../apps/worker/src/bookings/appointment-poller';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { activeCondition, PREGNANCY } from './fixtures/patient-data';
import {
  actionOf,
  approveFirstSession,
  enrolPatient,
  maintenanceJobDone,
  mergedIntoNewRecord,
  overrideIssue,
  postDeletion,
  postWebhook,
} from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

const HOUR = 3_600_000;

/**
 * A clinic books its sessions in its scheduling system (an Appointment), not here: the approved session the appointment
 * is for takes the appointment's time as its due window, and its reminders move with it (the fasting one 18 hours
 * before the appointment, not before the day), as a reschedule here would. Before, the clinic rescheduled each
 * session here by hand to its slot, or the reminders were timed from the start of the day.
 */
describe('appointments booked in the scheduling system time the approved session', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  /** An enrolled patient's first session, approved (its reminders written), with its protocol window. */
  async function approvedSession() {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const approved = await approveFirstSession(service, enrolment.carePlanId);
    return { ...enrolment, task: approved, allowed: protocolWindowOf(approved)! };
  }

  /** What the scheduling system writes: the patient and the nurse, booked for an hour from `start`. */
  async function book(patient: string, start: number, extra: Partial<Appointment> = {}): Promise<Appointment> {
    const { resource } = await service.fhir.create<Appointment>({
      resourceType: 'Appointment',
      status: 'booked',
      start: new Date(start).toISOString(),
      end: new Date(start + HOUR).toISOString(),
      participant: [
        { actor: { reference: patient }, status: 'accepted' },
        { actor: { reference: 'Practitioner/infusion-nurse' }, status: 'accepted' },
      ],
      ...extra,
    });
    return resource;
  }

  /** The scheduling system's Subscription tells the service (Medplum style); returns once the job is done. */
  async function notify(appointment: Appointment): Promise<void> {
    await postWebhook(service, JSON.stringify(appointment)).expect(202);
    await jobDone(appointment.id!);
  }

  async function jobDone(appointmentId: string): Promise<void> {
    await maintenanceJobDone(service, appointmentBookedJobId(appointmentId), 'the worker to handle the appointment');
  }

  const remindersOf = async (task: Task, carePlanId: string) =>
    (
      await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
        'based-on': `CarePlan/${carePlanId}`,
        status: 'active',
      })
    ).filter((r) => r.about?.some((a) => a.reference === `Task/${task.id}`));

  const bookings = async (task: Task) =>
    (await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${task.id}` })).filter(
      (p) => p.activity?.text === 'book',
    );

  it("books the session at the appointment's time: its window, its reminders, a Provenance naming the appointment", async () => {
    const { task, patient, carePlanId, allowed } = await approvedSession();
    const before = await remindersOf(task, carePlanId);
    expect(before.length).toBeGreaterThanOrEqual(3);
    // Two o'clock on the second day of the protocol's window.
    const start = Date.parse(allowed.start!) + 24 * HOUR + 14 * HOUR;
    const appointment = await book(patient, start);
    await notify(appointment);

    const booked = await service.fhir.read<Task>('Task', task.id!);
    expect(booked.restriction?.period).toEqual({
      start: new Date(start).toISOString(),
      end: new Date(start + HOUR).toISOString(),
    });
    // Approved for that slot, as a reschedule here says it; still to be done.
    expect(booked).toMatchObject({ status: 'ready', businessStatus: { coding: [{ code: 'rescheduled' }] } });
    // The reminders as the protocol times them from the start: ride home two days before, fasting 18 hours before,
    // no driving at the start.
    const at = (r: CommunicationRequest) => Date.parse(r.occurrenceDateTime!);
    const after = await remindersOf(task, carePlanId);
    expect(after.map(at).sort((a, b) => a - b)).toEqual([start - 48 * HOUR, start - 18 * HOUR, start]);
    expect(after.map((r) => r.id).sort()).toEqual(before.map((r) => r.id).sort());

    const [provenance] = await bookings(task);
    expect(provenance.agent?.[0].who?.identifier?.value).toBe('ketamine-careplans');
    // In the clinic's days and times (UTC here), as the page shows them.
    expect(allowed.start).toBe('2027-01-02T00:00:00.000Z');
    expect(provenance.reason?.[0].text).toBe(
      `Booked in the scheduling system: Appointment/${appointment.id}, 2027-01-03 14:00 .. 2027-01-03 15:00 (UTC)`,
    );
    // Notified again: booked already, nothing written.
    await notify(appointment);
    expect(await bookings(task)).toHaveLength(1);
    expect((await service.fhir.read<Task>('Task', task.id!)).meta?.versionId).toBe(booked.meta?.versionId);

    // The patient view says it, as a decision by the service.
    const timeline = await request(service.url)
      .get(`/patients/${patient.split('/')[1]}/timeline`)
      .set(service.as('clinician'))
      .expect(200);
    expect((timeline.body.events as { type: string; text: string }[]).map((e) => e.text)).toContainEqual(
      expect.stringMatching(/^Decision: book /),
    );
  });

  // Before session 49 only the Tasks under the appointment's own record were read: nothing was booked.
  it('booked under the record the patient’s was merged into (the plan left under the old one): books the session', async () => {
    const { task, patient, allowed } = await approvedSession();
    const kept = await mergedIntoNewRecord(service, patient);
    const start = Date.parse(allowed.start!) + 24 * HOUR + 14 * HOUR;
    await notify(await book(kept, start));
    const booked = await service.fhir.read<Task>('Task', task.id!);
    expect(booked.restriction?.period?.start).toBe(new Date(start).toISOString());
    expect(await bookings(task)).toHaveLength(1);
  });

  it('cancelled: the session is due in its protocol window again, its reminders revoked, the clinic told to book it; booked again, all back', async () => {
    const { task, patient, carePlanId, allowed } = await approvedSession();
    const start = Date.parse(allowed.start!) + 24 * HOUR + 10 * HOUR;
    const appointment = await book(patient, start);
    await notify(appointment);
    expect((await remindersOf(task, carePlanId)).length).toBe(3);

    const cancelled = await service.fhir.update<Appointment>({ ...appointment, status: 'cancelled' });
    await notify(cancelled);
    const unbooked = await service.fhir.read<Task>('Task', task.id!);
    const why = `Its appointment was cancelled in the scheduling system (Appointment/${appointment.id}): book it again`;
    expect(unbooked).toMatchObject({ status: 'ready', statusReason: { text: why } });
    // Due within its protocol window again, not at the slot that is gone (it would go overdue when that slot passed).
    expect(unbooked.restriction?.period).toEqual(allowed);
    // No reminder goes out for a slot that is gone.
    expect(await remindersOf(task, carePlanId)).toEqual([]);
    // The to-do list tells the clinic.
    const toDo = await request(service.url).get('/to-do').query({ patient }).set(service.as('clinician')).expect(200);
    const item = (toDo.body.items as { id: string; attention?: string }[]).find((i) => i.id === task.id);
    expect(item?.attention).toBe(why);
    // Notified again: nothing more.
    await notify(cancelled);
    expect((await service.fhir.read<Task>('Task', task.id!)).meta?.versionId).toBe(unbooked.meta?.versionId);

    // Booked again for another day: the session's new time, its reminders anew, the notice gone.
    const again = await book(patient, start + 24 * HOUR);
    await notify(again);
    const rebooked = await service.fhir.read<Task>('Task', task.id!);
    expect(rebooked.statusReason).toBeUndefined();
    const reminders = await remindersOf(task, carePlanId);
    expect(reminders.map((r) => Date.parse(r.occurrenceDateTime!)).sort((a, b) => a - b)).toEqual([
      start + 24 * HOUR - 48 * HOUR,
      start + 24 * HOUR - 18 * HOUR,
      start + 24 * HOUR,
    ]);
    expect((await bookings(task)).length).toBe(2);
  });

  it('deleted in the scheduling system, notified: as cancelled, the session is at no time and no reminder goes out', async () => {
    const { task, patient, carePlanId, allowed } = await approvedSession();
    const appointment = await book(patient, Date.parse(allowed.start!) + 24 * HOUR + 10 * HOUR);
    await notify(appointment);
    expect((await remindersOf(task, carePlanId)).length).toBe(3);
    const deleted = await fetch(`${service.config.fhirBaseUrl}/Appointment/${appointment.id}`, { method: 'DELETE' });
    expect(deleted.ok).toBe(true);
    // Medplum's way: `{}`, naming it in a header (before, "nothing to do": reminders went out for a slot that is gone).
    await postDeletion(service, `Appointment/${appointment.id}`).expect(202);
    await jobDone(appointment.id!);
    const unbooked = await service.fhir.read<Task>('Task', task.id!);
    expect(unbooked.statusReason?.text).toBe(
      `Its appointment was cancelled in the scheduling system (Appointment/${appointment.id}): book it again`,
    );
    expect(unbooked.restriction?.period).toEqual(allowed);
    expect(await remindersOf(task, carePlanId)).toEqual([]);
  });

  it('outside the protocol window, cancelled, or for a session not approved: nothing is booked, until it is approved', async () => {
    const { task, patient, allowed } = await approvedSession();
    const outside = await book(patient, Date.parse(allowed.end!) + 24 * HOUR);
    await notify(outside);
    const cancelled = await book(patient, Date.parse(allowed.start!) + 14 * HOUR, { status: 'cancelled' });
    await notify(cancelled);
    expect((await service.fhir.read<Task>('Task', task.id!)).meta?.versionId).toBe(task.meta?.versionId);
    expect(await bookings(task)).toEqual([]);

    // Awaiting approval: the appointment waits for the clinician (the reschedule is theirs until then).
    const other = await enrolPatient(service, 'ketamine-low-dose-series');
    const [draft] = (await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${other.carePlanId}` })).filter(
      (t) => actionOf(t) === 'infusion-session',
    );
    const slot = Date.parse(protocolWindowOf(draft)!.start!) + 14 * HOUR;
    const early = await book(other.patient, slot);
    await notify(early);
    expect((await service.fhir.read<Task>('Task', draft.id!)).meta?.versionId).toBe(draft.meta?.versionId);
    // Approved since: the appointment booked before books it now, without being written again.
    await request(service.url)
      .post(`/tasks/${draft.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: draft.meta!.versionId })
      .expect(200);
    await maintenanceJobDone(
      service,
      sessionApprovedJobId(draft.id!),
      'the approved session to look for its appointment',
    );
    expect((await service.fhir.read<Task>('Task', draft.id!)).restriction?.period).toEqual({
      start: new Date(slot).toISOString(),
      end: new Date(slot + HOUR).toISOString(),
    });
  });

  it('an appointment written while the session was held for a contraindication books it once the override releases it', async () => {
    const { task, patient, carePlanId, allowed } = await approvedSession();
    // A pregnancy recorded after approval: the session and its order are held.
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], patient));
    await service.app.get(ContraindicationSweep).recheckFor(`CarePlan/${carePlanId}`);
    const held = await service.fhir.read<Task>('Task', task.id!);
    expect(held.status).toBe('on-hold');
    const slot = Date.parse(allowed.start!) + 24 * HOUR + 10 * HOUR;
    await notify(await book(patient, slot));
    // Held: not booked (nobody may give it now).
    expect((await service.fhir.read<Task>('Task', task.id!)).meta?.versionId).toBe(held.meta?.versionId);

    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlanId}`,
    });
    await overrideIssue(service, issue, 'Test negative today').expect(200);
    await maintenanceJobDone(
      service,
      sessionApprovedJobId(task.id!),
      'the released session to look for its appointment',
    );
    const booked = await service.fhir.read<Task>('Task', task.id!);
    expect(booked).toMatchObject({ status: 'ready', businessStatus: { coding: [{ code: 'rescheduled' }] } });
    expect(booked.restriction?.period).toEqual({
      start: new Date(slot).toISOString(),
      end: new Date(slot + HOUR).toISOString(),
    });
    expect(await bookings(task)).toHaveLength(1);
  });

  it('an appointment for another service (its serviceType) in the window books nothing; one typed as the infusion does', async () => {
    const { task, patient, allowed } = await approvedSession();
    const slot = Date.parse(allowed.start!) + 24 * HOUR + 9 * HOUR;
    const review = await book(patient, slot, {
      serviceType: [{ coding: [{ system: 'http://snomed.info/sct', code: '394913002', display: 'Psychiatry' }] }],
    });
    await notify(review);
    expect((await service.fhir.read<Task>('Task', task.id!)).meta?.versionId).toBe(task.meta?.versionId);
    // Typed as the protocol's infusion (its ActivityDefinition's code): booked.
    const infusion = await book(patient, slot + 3 * HOUR, {
      serviceType: [{ coding: [{ system: 'http://snomed.info/sct', code: '14152002' }] }],
    });
    await notify(infusion);
    expect((await service.fhir.read<Task>('Task', task.id!)).restriction?.period?.start).toBe(
      new Date(slot + 3 * HOUR).toISOString(),
    );
  });

  it('an appointment the scheduling system named the Task in, found by the poll without a notification', async () => {
    const { task, patient, allowed } = await approvedSession();
    const start = Date.parse(allowed.start!) + 9 * HOUR;
    const appointment = await book(patient, start, { supportingInformation: [{ reference: `Task/${task.id}` }] });
    await service.app.get(AppointmentPoller).poll();
    await jobDone(appointment.id!);
    expect((await service.fhir.read<Task>('Task', task.id!)).restriction?.period?.start).toBe(
      new Date(start).toISOString(),
    );
  });
});
