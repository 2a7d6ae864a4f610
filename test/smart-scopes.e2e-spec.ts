import { SignJWT } from 'jose';
import request from 'supertest';
import type { Bundle, CarePlan, OperationOutcome, Parameters, Patient, Task } from '@medplum/fhirtypes';
import { PAGE_SCOPE } from '@kc/config';
import { bodyWeight } from './fixtures/patient-data';
import { enrolPatient } from './support/clinic';
import { startTestService, TEST_JWT_SECRET, type TestService } from './support/test-service';

/**
 * SMART on FHIR scopes: a token that carries them may do only what they grant, within its role; one from an
 * authorization server that issues no roles (an EHR's) gets the role SMART_ROLES gives a backend service or a
 * practitioner. A token with no scope is bounded by its role alone (every other suite).
 */
describe('SMART scopes', () => {
  let service: TestService;
  let mine: { patient: string; carePlanId: string };
  let theirs: { patient: string; carePlanId: string };
  beforeAll(async () => {
    service = await startTestService({
      auth: { jwtSecret: TEST_JWT_SECRET, smartRoles: { system: 'integration', Practitioner: 'clinician' } },
    });
    mine = await enrolPatient(service, 'ketamine-low-dose-series');
    theirs = await enrolPatient(service, 'ketamine-low-dose-series');
  }, 60_000);
  afterAll(() => service.stop());

  const bearer = async (claims: Record<string, unknown>) => ({
    Authorization: `Bearer ${await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('smart-client')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET))}`,
  });
  const get = async (path: string, claims: Record<string, unknown>) =>
    request(service.url)
      .get(path)
      .set(await bearer(claims));
  const refusal = (res: request.Response) => (res.body as OperationOutcome).issue?.[0]?.details?.text;
  const tasksOf = async (plan: { carePlanId: string }) =>
    service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${plan.carePlanId}` });

  it('an integration reads the types its scopes name, and is refused the others, saying which scope it lacks', async () => {
    const integration = { roles: ['integration'], scope: 'system/CarePlan.rs' };
    const plans = await get(`/fhir/CarePlan?patient=${mine.patient}`, integration);
    expect(plans.status).toBe(200);
    expect((plans.body as Bundle).entry?.map((e) => e.resource?.id)).toEqual([mine.carePlanId]);
    expect((await get(`/fhir/CarePlan/${mine.carePlanId}`, integration)).status).toBe(200);
    const tasks = await get(`/fhir/Task?patient=${mine.patient}`, integration);
    expect(tasks.status).toBe(403);
    expect(tasks.body.resourceType).toBe('OperationOutcome');
    expect(refusal(tasks)).toBe(
      "The token's scopes do not allow this: it needs system/Task.s (or wider), and grants system/CarePlan.rs",
    );
    // Read by id but not search: SMART 2.0's letters are kept apart.
    const readOnly = { roles: ['integration'], scope: 'system/CarePlan.r' };
    expect((await get(`/fhir/CarePlan/${mine.carePlanId}`, readOnly)).status).toBe(200);
    expect((await get(`/fhir/CarePlan?patient=${mine.patient}`, readOnly)).status).toBe(403);
  });

  it('a patient/ scope reads only its launch patient’s record', async () => {
    const launched = { roles: ['integration'], scope: 'launch/patient patient/*.rs', patient: mine.patient };
    const own = await get(`/fhir/Task?patient=${mine.patient}`, launched);
    expect(own.status).toBe(200);
    expect((own.body as Bundle).entry?.length).toBe((await tasksOf(mine)).length);
    // The bare id names the same patient.
    expect((await get(`/fhir/Task?patient=${mine.patient.split('/')[1]}`, launched)).status).toBe(200);
    for (const path of [`/fhir/Task?patient=${theirs.patient}`, `/fhir/Task?status=draft`]) {
      const res = await get(path, launched);
      expect({ path, status: res.status, type: res.body.resourceType }).toEqual({
        path,
        status: 403,
        type: 'OperationOutcome',
      });
    }
    expect((await get(`/fhir/CarePlan/${mine.carePlanId}`, launched)).status).toBe(200);
    // Another patient's plan by id: not found in this record, as an id that does not exist (its existence not told).
    for (const id of [theirs.carePlanId, 'no-such-plan']) {
      const outside = await get(`/fhir/CarePlan/${id}`, launched);
      expect([outside.status, refusal(outside)]).toEqual([
        404,
        `CarePlan/${id} is not found in the launch patient's record`,
      ]);
    }
    // Definitions are nobody's record.
    expect((await get('/fhir/PlanDefinition?name=KetamineLowDoseSeries', launched)).status).toBe(200);
    // A patient/ scope with no launch patient reads no record.
    const unlaunched = await get(`/fhir/Task?patient=${mine.patient}`, {
      roles: ['integration'],
      scope: 'patient/*.rs',
    });
    expect(unlaunched.status).toBe(403);
  });

  it('a clinician whose token only reads sees the worklist but may not approve; the Task stays awaiting approval', async () => {
    const [draft] = (await tasksOf(mine)).filter((t) => t.status === 'draft');
    const readOnly = await bearer({
      roles: ['clinician'],
      fhirUser: 'Practitioner/dr-test',
      scope: 'openid user/*.read',
    });
    expect((await request(service.url).get('/worklist').set(readOnly)).status).toBe(200);
    const refused = await request(service.url)
      .post(`/tasks/${draft.id}/$approve`)
      .set(readOnly)
      .send({ versionId: draft.meta!.versionId });
    expect(refused.status).toBe(403);
    expect(refusal(refused)).toMatch(/needs user\/Task\.u/);
    expect((await service.fhir.read<Task>('Task', draft.id!)).meta?.versionId).toBe(draft.meta!.versionId);
    // The page's own scope (PAGE_SCOPE) writes what a decision writes.
    const page = await bearer({ roles: ['clinician'], fhirUser: 'Practitioner/dr-test', scope: PAGE_SCOPE });
    const approved = await request(service.url)
      .post(`/tasks/${draft.id}/$approve`)
      .set(page)
      .send({ versionId: draft.meta!.versionId });
    expect(approved.status).toBe(200);
    expect((approved.body as Task).status).toBe('ready');
  });

  it('an EHR’s backend service, with no roles claim, is an integration (SMART_ROLES), and writes a plan only if its scopes do', async () => {
    const { resource: patient } = await service.fhir.create<Patient>({
      resourceType: 'Patient',
      name: [{ family: 'New' }],
    });
    const subject = `Patient/${patient.id}`;
    await service.fhir.create(bodyWeight(80, '2026-11-01T09:00:00Z', subject));
    const apply = async (scope: string) =>
      request(service.url)
        .post('/fhir/PlanDefinition/ketamine-low-dose-series/$apply')
        .set(await bearer({ scope }))
        .send({
          resourceType: 'Parameters',
          parameter: [
            { name: 'subject', valueReference: { reference: subject } },
            { name: 'startDate', valueDate: '2027-03-01' },
            { name: 'persist', valueBoolean: true },
          ],
        } satisfies Parameters);
    const before = await service.fhir.searchAll<CarePlan>('CarePlan', { subject });
    const readOnly = await apply('system/*.read');
    expect(readOnly.status).toBe(403);
    expect(refusal(readOnly)).toMatch(/needs system\/CarePlan\.c/);
    expect(await service.fhir.searchAll<CarePlan>('CarePlan', { subject })).toHaveLength(before.length);
    const writing = await apply('system/*.read system/CarePlan.write');
    expect(writing.status).toBe(200);
    expect(await service.fhir.searchAll<CarePlan>('CarePlan', { subject })).toHaveLength(before.length + 1);
    // Not a clinician: the worklist is refused by role.
    expect((await get('/worklist', { scope: 'system/*.*' })).status).toBe(403);
  });

  it('a practitioner signed in at the EHR, with no roles claim, is a clinician (SMART_ROLES); a patient is not', async () => {
    const practitioner = { scope: 'openid fhirUser user/*.read', fhirUser: 'Practitioner/dr-ehr' };
    expect((await get('/worklist', practitioner)).status).toBe(200);
    expect((await get('/worklist', { ...practitioner, fhirUser: 'Patient/1' })).status).toBe(403);
  });
});
