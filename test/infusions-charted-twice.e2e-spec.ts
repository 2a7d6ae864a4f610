import request from 'supertest';
import type { Procedure, Task } from '@medplum/fhirtypes';
import { recheckContraindicationsJobId } from '@kc/queue';
import {
  actionOf,
  completeInfusion,
  enrolPatient,
  followUpJobDone,
  followUpTasks,
  maintenanceJobDone,
  postWebhook,
  reportInfusion,
} from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

const DAY = 86_400_000;

/**
 * An infusion the EHR charts twice (its interface sending it again as a new Procedure, for the same time on the same
 * plan). Before session 47 each copy was followed up: a second post-infusion check and a second next session awaiting
 * approval for the same days (two orders, if both were approved), and every later infusion counted one too many, so a
 * series ended a session early. Now the copy charted for an overlapping time of an infusion already followed up (since
 * session 53 also one closer to it than one infusion lasts) is not followed up, the count takes the two as one, and if the one followed up is taken back, the other is followed up.
 */
describe('an infusion charted twice', () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService();
  }, 60_000);
  afterAll(() => service.stop());

  const planTasks = (carePlanId: string) =>
    service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
  /** The EHR charts an infusion of the plan with this time (an instant, or a period). */
  const chartedAt = async (
    enrolment: { patient: string; carePlanId: string },
    performed: Pick<Procedure, 'performedDateTime' | 'performedPeriod'>,
  ) =>
    (
      await service.fhir.create<Procedure>({
        resourceType: 'Procedure',
        status: 'completed',
        code: { coding: [{ system: 'http://snomed.info/sct', code: '14152002', display: 'Intravenous infusion' }] },
        subject: { reference: enrolment.patient },
        basedOn: [{ reference: `CarePlan/${enrolment.carePlanId}` }],
        ...performed,
      })
    ).resource.id!;
  const actionsOf = async (carePlanId: string) =>
    (await planTasks(carePlanId))
      .filter((t) => t.status === 'draft')
      .map((t) => actionOf(t))
      .sort();

  it('for the same time on the plan: followed up once, the second event saying why', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const first = await completeInfusion(service, enrolment, '2027-01-04T10:00:00Z');
    await reportInfusion(service, first);
    const again = await completeInfusion(service, enrolment, '2027-01-04T10:00:00Z');
    const outcome = (await reportInfusion(service, again)) as { status: string; reason: string };
    expect(outcome.status).toBe('ignored');
    expect(outcome.reason).toMatch(
      new RegExp(`^charted twice: Procedure/${first} was charted for the same time on this plan`),
    );
    expect(await followUpTasks(service, again)).toEqual([]);
    // One post-infusion check and one next session awaiting approval (besides $apply's patient instructions).
    expect(await actionsOf(enrolment.carePlanId)).toEqual([
      'next-induction-session',
      'patient-instructions',
      'post-infusion-check',
    ]);
  });

  // Since session 53; before, a copy that did not overlap was a second infusion: a second check, and the next session
  // answered by it as given.
  it('charted apart by less than one infusion lasts (at the instant it ended; a pump started again): followed up once', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    // 09:00-10:00, then the nurse's record at the instant she charted it, 10:25: the low-dose infusion lasts 40 minutes.
    const first = await completeInfusion(service, enrolment, '2027-01-04T10:00:00Z');
    await reportInfusion(service, first);
    const charted = await chartedAt(enrolment, { performedDateTime: '2027-01-04T10:25:00Z' });
    expect(await reportInfusion(service, charted)).toMatchObject({
      status: 'ignored',
      reason: expect.stringMatching(new RegExp(`^charted twice: Procedure/${first} was charted for the same time`)),
    });
    // A pump stopped and started again, charted as a second record 30 minutes after the first ended.
    const restarted = await chartedAt(enrolment, {
      performedPeriod: { start: '2027-01-04T10:30:00Z', end: '2027-01-04T10:50:00Z' },
    });
    expect(await reportInfusion(service, restarted)).toMatchObject({ status: 'ignored' });
    expect(await actionsOf(enrolment.carePlanId)).toEqual([
      'next-induction-session',
      'patient-instructions',
      'post-infusion-check',
    ]);
    // Longer apart than that is a second infusion, followed up (no protocol gives two sessions within one infusion's
    // length; the next day is the next session).
    const nextDay = await completeInfusion(service, enrolment, '2027-01-06T10:00:00Z');
    expect(await reportInfusion(service, nextDay)).toMatchObject({ status: 'created' });
    // The patient's timeline on the page says which records are the same infusion (since session 53).
    const { body } = await request(service.url)
      .get(`/patients/${enrolment.patient.split('/')[1]}/timeline`)
      .set(service.as('clinician'))
      .expect(200);
    const infusions = (body as { events: { type: string; reference: string; reason?: string }[] }).events.filter(
      (e) => e.type === 'infusion',
    );
    const sameAsFirst =
      'charted twice: the same infusion as the one charted 2027-01-04 09:00 .. 2027-01-04 10:00 (UTC), followed up once';
    expect(infusions.map((e) => [e.reference, e.reason]).sort()).toEqual(
      [
        [`Procedure/${first}`, undefined],
        [`Procedure/${charted}`, sameAsFirst],
        [`Procedure/${restarted}`, sameAsFirst],
        [`Procedure/${nextDay}`, undefined],
      ].sort(),
    );
  });

  it('both reported at once: followed up once', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const one = await completeInfusion(service, enrolment, '2027-01-04T10:00:00Z');
    const two = await completeInfusion(service, enrolment, '2027-01-04T10:30:00Z');
    for (const id of [one, two])
      await request(service.url)
        .post('/events/infusion-completed')
        .set(service.as('integration'))
        .send({ procedure: `Procedure/${id}` })
        .expect(202);
    const outcomes = (await Promise.all([one, two].map((id) => followUpJobDone(service, id)))) as { status: string }[];
    expect(outcomes.map((o) => o.status).sort()).toEqual(['created', 'ignored']);
    expect(await actionsOf(enrolment.carePlanId)).toEqual([
      'next-induction-session',
      'patient-instructions',
      'post-infusion-check',
    ]);
  });

  it('the two count as one: the fifth infusion of a six-session series, one charted twice, plans the sixth', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const infusions: string[] = [];
    for (let k = 0; k < 5; k++) {
      const end = new Date(Date.parse('2027-01-04T10:00:00Z') + 3 * k * DAY).toISOString();
      infusions.push(await completeInfusion(service, enrolment, end));
      await reportInfusion(service, infusions[k]);
      // The second is charted twice.
      if (k === 1) await reportInfusion(service, await completeInfusion(service, enrolment, end));
    }
    // Before, the copy counted: the fifth was taken for the sixth, and a maintenance booster planned instead.
    expect((await followUpTasks(service, infusions[4])).map(actionOf)).toContain('next-induction-session');
    expect((await followUpTasks(service, infusions[4])).map(actionOf)).not.toContain('maintenance-booster');
  });

  it.each([
    ['for the same time', { performedPeriod: { start: '2027-01-04T09:00:00Z', end: '2027-01-04T10:00:00Z' } }],
    // Since session 53.
    ['minutes after it', { performedDateTime: '2027-01-04T10:25:00Z' }],
  ])(
    'the one followed up taken back (entered in error): its copy charted %s is followed up in its place',
    async (_, performed) => {
      const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
      const first = await completeInfusion(service, enrolment, '2027-01-04T10:00:00Z');
      await reportInfusion(service, first);
      const again = await chartedAt(enrolment, performed);
      expect(await reportInfusion(service, again)).toMatchObject({ status: 'ignored' });

      const inError = await service.fhir.update<Procedure>({
        ...(await service.fhir.read<Procedure>('Procedure', first)),
        status: 'entered-in-error',
      });
      await postWebhook(service, JSON.stringify(inError)).expect(202);
      await maintenanceJobDone(service, recheckContraindicationsJobId(`Procedure/${first}`), 'the taken-back heard');
      expect(await followUpJobDone(service, again)).toMatchObject({ status: 'created' });
      expect((await followUpTasks(service, again)).map(actionOf).sort()).toEqual([
        'next-induction-session',
        'post-infusion-check',
      ]);
    },
  );
});
