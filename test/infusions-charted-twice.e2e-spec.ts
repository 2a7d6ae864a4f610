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
 * series ended a session early. Now the copy charted for an overlapping time of an infusion already followed up is not
 * followed up, the count takes the two as one, and if the one followed up is taken back, the other is followed up.
 */
describe('an infusion charted twice', () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService();
  }, 60_000);
  afterAll(() => service.stop());

  const planTasks = (carePlanId: string) =>
    service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
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
      new RegExp(`^charted twice: Procedure/${first} was charted for an overlapping time`),
    );
    expect(await followUpTasks(service, again)).toEqual([]);
    // One post-infusion check and one next session awaiting approval (besides $apply's patient instructions).
    expect(await actionsOf(enrolment.carePlanId)).toEqual([
      'next-induction-session',
      'patient-instructions',
      'post-infusion-check',
    ]);
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

  it('the one followed up taken back (entered in error): the other is followed up in its place', async () => {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const first = await completeInfusion(service, enrolment, '2027-01-04T10:00:00Z');
    await reportInfusion(service, first);
    const again = await completeInfusion(service, enrolment, '2027-01-04T10:00:00Z');
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
  });
});
