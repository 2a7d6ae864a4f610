import request from 'supertest';
import type { Goal, Task } from '@medplum/fhirtypes';
import { clinicDateTime } from '@kc/protocols';
import { completeInfusion, enrolPatient, followUpTasks, reportInfusion } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

const NEW_YORK = 'America/New_York';
const actionOf = (t: Task) => t.extension?.find((e) => e.url.endsWith('protocol-action'))?.valueString;

/**
 * A clinic in New York (CLINIC_TIME_ZONE): the days its clinicians give and read are its own, and the protocols count
 * days and weeks on its calendar, across the change to summer time (14 March 2027) too. Stored instants stay UTC.
 */
describe("a clinic in New York: the protocols' days are the clinic's, not UTC's", () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ clinicTimeZone: NEW_YORK });
  });
  afterAll(() => service.stop());

  it('$apply from a start date alone: windows from the clinic’s midnight, still on its midnights after summer time begins', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { startDate: '2027-03-01' });
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    const session = tasks.find((t) => actionOf(t) === 'infusion-session')!;
    // Midnight on 2 March in New York (EST, UTC-5) to midnight on 15 March (EDT, UTC-4): not UTC's midnights.
    expect(session.restriction?.period).toEqual({
      start: '2027-03-02T05:00:00.000Z',
      end: '2027-03-15T04:00:00.000Z',
    });
    for (const { restriction } of tasks) {
      expect(clinicDateTime(restriction!.period!.start, NEW_YORK)).toMatch(/ 00:00$/);
      expect(clinicDateTime(restriction!.period!.end, NEW_YORK)).toMatch(/ 00:00$/);
    }
    const goals = await service.fhir.searchAll<Goal>('Goal', { subject: enrolment.patient });
    for (const goal of goals) expect(goal.startDate).toBe('2027-03-01');

    // Rescheduled to a day given alone: that day in the clinic, which the protocol's own window allows.
    const instructions = tasks.find((t) => actionOf(t) === 'patient-instructions')!;
    const moved = await request(service.url)
      .post(`/tasks/${instructions.id}/$reschedule`)
      .set(service.as('clinician'))
      .send({ versionId: instructions.meta!.versionId, start: '2027-03-01', end: '2027-03-02' })
      .expect(200);
    expect(moved.body.restriction.period).toEqual({
      start: '2027-03-01T05:00:00.000Z',
      end: '2027-03-02T05:00:00.000Z',
    });

    // The worklist's days are the clinic's too: due from 2 March (New York) is the session, not the instructions.
    const dueAfter = await request(service.url)
      .get('/worklist')
      .query({ patient: enrolment.patient, 'due-after': '2027-03-02' })
      .set(service.as('clinician'))
      .expect(200);
    expect(dueAfter.body.items.map((i: { id: string }) => i.id)).toEqual([session.id]);
  });

  it('follow-ups 2 to 4 days after an infusion that ended at 11:00 in the clinic are due from 11:00, summer time or not', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series', { startDate: '2027-03-01' });
    // 11:00 EST on Friday 12 March; the clocks go forward on Sunday 14 March.
    const procedureId = await completeInfusion(service, enrolment, '2027-03-12T16:00:00.000Z');
    await reportInfusion(service, procedureId);
    const next = (await followUpTasks(service, procedureId)).find((t) => actionOf(t) === 'next-induction-session')!;
    expect(next.restriction?.period).toEqual({
      start: '2027-03-14T15:00:00.000Z',
      end: '2027-03-16T15:00:00.000Z',
    });
    expect(clinicDateTime(next.restriction!.period!.start, NEW_YORK)).toBe('2027-03-14 11:00');
  });
});
