import request from 'supertest';
import type { CareTeam, Patient, Practitioner, Provenance, Task } from '@medplum/fhirtypes';
import { bloodPressure, bodyWeight } from './fixtures/patient-data';
import { mintToken } from '@kc/auth';
import { stateOf } from '@kc/task-states';
import { actionOf, applyPlan, completeInfusion, enrolPatient, followUpTasks, reportInfusion } from './support/clinic';
import { startTestService, TEST_JWT_SECRET, type TestService } from './support/test-service';

interface ListItem {
  id: string;
  kind?: string;
  owner?: { reference?: string; display?: string };
}

/**
 * Who does it: a clinician takes an approved Task (Task.owner, what an EHR's work queue reads), hands it to a
 * colleague or gives it back, and each list answers "mine", "nobody's" and "theirs" exactly. Before, the to-do list
 * said what was approved but not who would do it.
 */
describe('Task owner: $assign, $unassign and the owner filter', () => {
  let service: TestService;
  let tasks: Task[];
  let nurse: string;

  beforeAll(async () => {
    service = await startTestService();
    tasks = [];
    // A plan proposes its first sessions; three plans give the Tasks these tests decide on.
    for (let i = 0; i < 3; i++) {
      const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
      const planTasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
      tasks.push(...planTasks.filter((t) => stateOf(t) === 'awaiting-approval'));
    }
    const { resource } = await service.fhir.create<Practitioner>({
      resourceType: 'Practitioner',
      name: [{ given: ['Joy'], family: 'Nurse', prefix: ['RN'] }],
    });
    nurse = `Practitioner/${resource.id}`;
  });
  afterAll(() => service.stop());

  const post = (task: Task, op: string, body: Record<string, unknown> = {}, as = service.as('clinician')) =>
    request(service.url)
      .post(`/tasks/${task.id}/$${op}`)
      .set(as)
      .send({ versionId: task.meta!.versionId, ...body });
  const ids = async (list: 'worklist' | 'to-do', query: Record<string, string>) =>
    (
      (
        await request(service.url)
          .get(`/${list}`)
          .query({ count: '100', ...query })
          .set(service.as('clinician'))
          .expect(200)
      ).body as { items: ListItem[] }
    ).items.map((i) => i.id);
  const provenanceOf = async (task: Task, activity: string) =>
    (await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${task.id}` })).filter(
      (p) => p.activity?.text === activity,
    );

  it('a clinician takes an approved Task: it is theirs on the to-do list and for an EHR, until they give it back', async () => {
    const approved = (await post(tasks[0], 'approve').expect(200)).body as Task;
    expect(approved.owner).toBeUndefined();
    expect(await ids('to-do', { owner: 'none' })).toContain(approved.id);

    const taken = (await post(approved, 'assign').expect(200)).body as Task;
    // Standard fields alone: who, and still approved (status ready) as before.
    expect(taken.owner).toEqual({ reference: 'Practitioner/dr-test', display: 'Dr Test' });
    expect(taken.status).toBe('ready');
    expect(stateOf(taken)).toBe('approved');
    expect(await ids('to-do', { owner: 'me' })).toEqual([taken.id]);
    expect(await ids('to-do', { owner: 'Practitioner/dr-test' })).toEqual([taken.id]);
    expect(await ids('to-do', { owner: 'none' })).not.toContain(taken.id);
    const [item] = (
      (await request(service.url).get('/to-do').query({ owner: 'me' }).set(service.as('clinician')).expect(200))
        .body as { items: ListItem[] }
    ).items;
    expect(item.owner).toEqual({ reference: 'Practitioner/dr-test', display: 'Dr Test' });
    const [provenance] = await provenanceOf(taken, 'assign');
    expect(provenance.agent[0].who).toEqual({ reference: 'Practitioner/dr-test', display: 'Dr Test' });
    expect(provenance.entity?.[0].what.reference).toBe(`Task/${taken.id}/_history/${approved.meta!.versionId}`);

    const released = (await post(taken, 'unassign').expect(200)).body as Task;
    expect(released.owner).toBeUndefined();
    expect(released.status).toBe('ready');
    expect(await ids('to-do', { owner: 'me' })).toEqual([]);
    expect(await ids('to-do', { owner: 'none' })).toContain(released.id);
    expect(await provenanceOf(released, 'unassign')).toHaveLength(1);
  });

  it('hands a Task to a colleague by reference, named as the FHIR server names them; filters combine', async () => {
    const approved = (await post(tasks[1], 'approve').expect(200)).body as Task;
    const handed = (await post(approved, 'assign', { owner: nurse }).expect(200)).body as Task;
    expect(handed.owner).toEqual({ reference: nurse, display: 'RN Joy Nurse' });
    expect(await ids('to-do', { owner: nurse })).toEqual([handed.id]);
    expect(await ids('to-do', { owner: nurse, kind: handed.code!.coding![0].code! })).toEqual([handed.id]);
    expect(await ids('to-do', { owner: nurse, kind: 'post-infusion-check' })).toEqual([]);
    expect(await ids('to-do', { owner: 'me' })).not.toContain(handed.id);
    // Who has what on the to-do list: the first test's Task given back (nobody's), this one the nurse's.
    const owners = await request(service.url).get('/to-do/owners').set(service.as('clinician')).expect(200);
    expect(owners.body).toEqual({
      owners: [
        { owner: null, count: 1 },
        { owner: nurse, display: 'RN Joy Nurse', count: 1 },
      ],
    });
    await request(service.url).get('/to-do/owners').set(service.as('integration')).expect(403);
    // An EHR finds it by the standard search alone, through this API's EHR read interface.
    const ehr = await request(service.url)
      .get('/fhir/Task')
      .query({ owner: nurse })
      .set(service.as('integration'))
      .expect(200);
    expect((ehr.body as { entry?: { resource: Task }[] }).entry?.map((e) => e.resource.id)).toEqual([handed.id]);
    // The patient view names whose it is.
    const timeline = await request(service.url)
      .get(`/patients/${handed.for!.reference!.split('/')[1]}/timeline`)
      .set(service.as('clinician'))
      .expect(200);
    const event = (timeline.body as { events: { reference?: string; status?: string }[] }).events.find(
      (e) => e.reference === `Task/${handed.id}`,
    );
    expect(event?.status).toBe('approved, taken by RN Joy Nurse');

    // A Task awaiting approval can have an owner too: the worklist filters by it the same way.
    const draft = (await post(tasks[2], 'assign').expect(200)).body as Task;
    expect(draft.status).toBe('draft');
    expect(await ids('worklist', { owner: 'me' })).toEqual([draft.id]);
    expect(await ids('worklist', { owner: 'none' })).not.toContain(draft.id);
  });

  it('refuses what cannot be: an unknown colleague, a stale version, a closed Task, a bad filter, the wrong role', async () => {
    const task = await service.fhir.read<Task>('Task', tasks[3].id!);
    const unknown = await post(task, 'assign', { owner: 'Practitioner/nobody-here' }).expect(422);
    expect(unknown.body.issue[0].details.text).toMatch(/Practitioner\/nobody-here is not on the FHIR server/);
    await post(task, 'assign', { owner: 'Patient/p1' }).expect(400);
    const assigned = (await post(task, 'assign').expect(200)).body as Task;
    // The version the clinician saw is gone (assigned since): they reload before handing it on.
    const stale = await post(task, 'assign', { owner: nurse }).expect(412);
    expect(stale.body.issue[0].details.text).toBe(
      'This task has changed since you loaded it; reload it and decide again',
    );
    // Sent again as it was (its answer lost): the same assignment, answered as the first time.
    expect(((await post(task, 'assign').expect(200)).body as Task).meta!.versionId).toBe(assigned.meta!.versionId);
    const rejected = (await post(assigned, 'reject', { reason: 'Not needed' }).expect(200)).body as Task;
    const closed = await post(rejected, 'assign').expect(409);
    expect(closed.body.resourceType).toBe('OperationOutcome');

    await post(task, 'assign', {}, service.as('integration')).expect(403);
    const noFhirUser = await mintToken({ sub: 'locum', roles: ['clinician'] }, { secret: TEST_JWT_SECRET });
    const anonymous = { Authorization: `Bearer ${noFhirUser}` };
    await post(tasks[4], 'assign', {}, anonymous).expect(422);
    const me = await request(service.url).get('/to-do').query({ owner: 'me' }).set(anonymous).expect(400);
    expect(me.body.issue[0].details.text).toMatch(/owner=me needs a token that names its FHIR user/);
    await request(service.url).get('/to-do').query({ owner: 'Patient/p1' }).set(service.as('clinician')).expect(400);
  });
});

/**
 * Who a follow-up is for when it is written (FOLLOW_UP_OWNER): nobody's by default (a pool takes it); with `infusion`,
 * whoever's the infusion's Task was (a primary-nurse clinic: who gave the session does its check and the next one).
 */
describe('Task owner: the follow-ups of an infusion', () => {
  const services: TestService[] = [];
  afterAll(() => Promise.all(services.map((s) => s.stop())));

  /** A first session approved for a nurse, given, and followed up: the follow-up Tasks as written. */
  async function followUpsOfNursedSession(service: TestService) {
    const { resource: nurse } = await service.fhir.create<Practitioner>({
      resourceType: 'Practitioner',
      name: [{ given: ['Pat'], family: 'Primary', prefix: ['RN'] }],
    });
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const planTasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    const session = planTasks.find((t) => actionOf(t) === 'infusion-session')!;
    await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: session.meta!.versionId, owner: `Practitioner/${nurse.id}` })
      .expect(200);
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, procedureId);
    return { nurse: `Practitioner/${nurse.id}`, followUps: await followUpTasks(service, procedureId) };
  }

  it('by default nobody’s: the to-do list’s pool takes them', async () => {
    const service = await startTestService();
    services.push(service);
    const { followUps } = await followUpsOfNursedSession(service);
    expect(followUps.length).toBeGreaterThanOrEqual(2);
    expect(followUps.map((t) => t.owner)).toEqual(followUps.map(() => undefined));
  });

  it('FOLLOW_UP_OWNER=infusion: the check and the next session are the nurse’s who had the session, on each list', async () => {
    const service = await startTestService({ followUpOwner: 'infusion' });
    services.push(service);
    const { nurse, followUps } = await followUpsOfNursedSession(service);
    const check = followUps.find((t) => actionOf(t) === 'post-infusion-check')!;
    const next = followUps.find((t) => actionOf(t) === 'next-induction-session')!;
    // As an EHR's work queue reads it: Task.owner, named as the server names the nurse.
    expect(check.owner).toMatchObject({ reference: nurse });
    expect(next.owner).toMatchObject({ reference: nurse });
    // The worklist's owner filter finds them as the nurse's.
    const theirs = (
      await request(service.url)
        .get('/worklist')
        .query({ owner: nurse, count: '100' })
        .set(service.as('clinician'))
        .expect(200)
    ).body.items.map((i: ListItem) => i.id);
    expect(theirs).toEqual(expect.arrayContaining([check.id, next.id]));
  });
  it('FOLLOW_UP_OWNER=care-team: each follow-up is the care team’s member in the role the protocol names (a nurse)', async () => {
    const service = await startTestService({ followUpOwner: 'care-team' });
    services.push(service);
    const practitioner = async (family: string) =>
      `Practitioner/${(await service.fhir.create<Practitioner>({ resourceType: 'Practitioner', name: [{ family }] })).resource.id}`;
    const [doctor, nurse, former, rota] = await Promise.all([
      practitioner('Doc'),
      practitioner('Nurse'),
      practitioner('Gone'),
      practitioner('Rota'),
    ]);
    // The EHR's care team for the patient, before enrolment: roles coded as the EHR codes them (SNOMED here), a
    // membership that ended, and a nurse on the rota from 5 January (listed first: on duty then, she takes what is due
    // then).
    const { resource: patient } = await service.fhir.create<Patient>({
      resourceType: 'Patient',
      name: [{ family: 'Teamed' }],
    });
    const subject = `Patient/${patient.id}`;
    await service.fhir.create(bodyWeight(80, '2026-11-01T09:00:00Z', subject));
    await service.fhir.create(bloodPressure(124, 78, '2026-11-01T09:00:00Z', subject));
    const role = (code: string, display: string) => [{ coding: [{ system: 'http://snomed.info/sct', code, display }] }];
    await service.fhir.create<CareTeam>({
      resourceType: 'CareTeam',
      status: 'active',
      subject: { reference: subject },
      participant: [
        { member: { reference: doctor, display: 'Dr Doc' }, role: role('309343006', 'Physician') },
        {
          member: { reference: former, display: 'RN Gone' },
          role: role('224535009', 'Registered nurse'),
          period: { end: '2026-06-30' },
        },
        {
          member: { reference: rota, display: 'RN Rota' },
          role: role('224535009', 'Registered nurse'),
          period: { start: '2027-01-05T00:00:00Z', end: '2027-03-01T00:00:00Z' },
        },
        { member: { reference: nurse, display: 'RN Nurse' }, role: role('224535009', 'Registered nurse') },
      ],
    });
    const applied = await applyPlan(service, 'ketamine-low-dose-series', subject);
    const enrolment = { patient: subject, carePlanId: applied.id! };
    // Enrolment's own Tasks too: the first session is the nurse's.
    const planTasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    expect(planTasks.find((t) => actionOf(t) === 'infusion-session')?.owner).toEqual({
      reference: nurse,
      display: 'RN Nurse',
    });
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, procedureId);
    const followUps = await followUpTasks(service, procedureId);
    const check = followUps.find((t) => actionOf(t) === 'post-infusion-check')!;
    const next = followUps.find((t) => actionOf(t) === 'next-induction-session')!;
    // Who the protocol says performs them (ActivityDefinition.participant), as the Task says, and who that is here.
    expect(check.performerType?.[0].coding).toContainEqual(
      expect.objectContaining({ system: 'http://snomed.info/sct', code: '224535009' }),
    );
    // Judged when each is due: the check from the infusion's end (4 January: before the rota starts), the next session
    // later (the rota nurse's by then).
    expect(check.restriction?.period?.start?.slice(0, 10)).toBe('2027-01-04');
    expect(check.owner).toEqual({ reference: nurse, display: 'RN Nurse' });
    expect(Date.parse(next.restriction!.period!.start!)).toBeGreaterThan(Date.parse('2027-01-05T00:00:00Z'));
    expect(next.owner).toEqual({ reference: rota, display: 'RN Rota' });

    // A patient with no care team: nobody's, as without the setting.
    const alone = await enrolPatient(service, 'ketamine-low-dose-series');
    const aloneProcedure = await completeInfusion(service, alone, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, aloneProcedure);
    const unowned = await followUpTasks(service, aloneProcedure);
    expect(unowned.length).toBeGreaterThanOrEqual(2);
    expect(unowned.map((t) => t.owner)).toEqual(unowned.map(() => undefined));
  });
});
