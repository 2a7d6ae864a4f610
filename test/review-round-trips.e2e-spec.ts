import request from 'supertest';
import type { CarePlan, DetectedIssue, MedicationRequest, Patient, Task } from '@medplum/fhirtypes';
import { orderKeySearch, stateOf } from '@kc/task-states';
import { activeCondition, bodyWeight, PREGNANCY } from './fixtures/patient-data';
import { applyPlan, enrolPatient, mergedIntoNewRecord, requestsBesidesAudit } from './support/clinic';
import { startBehindProxy, type FlakyProxy, type ServiceBehindProxy } from './support/flaky-proxy';
import { startTestService, type TestService } from './support/test-service';

// One service for the file, its FHIR requests counted at a proxy in front of its FHIR server.
let behind: ServiceBehindProxy<TestService>;
let proxy: FlakyProxy;
let service: TestService;
beforeAll(async () => {
  behind = await startBehindProxy((fhirBaseUrl) => startTestService({ fhirBaseUrl, runWorker: false }));
  ({ proxy, service } = behind);
});
afterAll(() => behind?.stop());

/** Requests the proxy forwarded so far, besides the access audit's (written in the background, across requests). */
const forwarded = () => requestsBesidesAudit(service, () => proxy.forwarded);

/** A new enrolment's infusion Task awaiting approval. */
async function newInfusionAwaitingApproval(): Promise<Task> {
  const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
  const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
  return tasks.find((t) => t.focus?.reference?.startsWith('MedicationRequest/') && stateOf(t) === 'awaiting-approval')!;
}

/** The Task approved by the test clinician, on the version read. */
const approved = (task: Task) =>
  request(service.url)
    .post(`/tasks/${task.id}/$approve`)
    .set(service.as('clinician'))
    .send({ versionId: task.meta!.versionId })
    .expect(200);

/**
 * Issue 10 ($approve >= 0.5x a raw If-Match update): an approval costs 3 FHIR requests, counted at a proxy in front
 * of the FHIR server: the Task with the request it authorises, its CarePlan and the plan's contraindications
 * (`_include`, `_revinclude:iterate`); the patient's data the protocol's contraindication checks read (one batch,
 * since session 16: a pregnancy recorded after enrolment must stop the order; only for a Task those checks gate); and
 * one transaction (Task update, order, reminders, Provenance).
 */
describe('$approve: 3 FHIR requests', () => {
  it('approving the infusion Task (which creates the order) sends 3 requests to the FHIR server', async () => {
    const infusion = await newInfusionAwaitingApproval();
    const before = await forwarded();
    await approved(infusion);
    expect((await forwarded()) - before).toBe(3);
  });
});

/**
 * Rejecting an approved session withdraws the orders it would be given under: since session 39 one batch finds them all
 * (the order written here, the EHR's replacements of it at any depth, what the pump recorded of each); before, two
 * to four searches one after another. Since session 56 the same batch once more after the transaction: an EHR
 * replacement of the order written while the rejection was being made is cancelled with it (CrossedEhrOrders).
 */
describe('$reject of an approved session: its orders found in one request', () => {
  it('rejecting an approved infusion sends 5 requests: the Task, its reminders, its orders, one transaction, its orders again', async () => {
    const infusion = await newInfusionAwaitingApproval();
    const approvedNow = await approved(infusion);
    const before = await forwarded();
    await request(service.url)
      .post(`/tasks/${infusion.id}/$reject`)
      .set(service.as('clinician'))
      .send({ versionId: (approvedNow.body as Task).meta!.versionId, reason: 'Not now' })
      .expect(200);
    expect((await forwarded()) - before).toBe(5);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(infusion.id!),
    });
    expect(order.status).toBe('cancelled');
  });
});

/** The infusion Task awaiting approval of `count` new enrolments, the one at `staleAt` changed since it was read. */
async function infusionTasksOneStale(count: number, staleAt: number): Promise<{ infusions: Task[]; stale: Task }> {
  const infusions: Task[] = [];
  for (let i = 0; i < count; i++) {
    infusions.push(await newInfusionAwaitingApproval());
  }
  const stale = infusions[staleAt];
  await service.fhir.update({ ...stale, description: 'edited meanwhile' }, { ifMatch: stale.meta!.versionId });
  return { infusions, stale };
}

/**
 * Approvals arriving at once share their reads (one batch) and their writes (one transaction), each still all or
 * nothing: a clinic's morning of approvals costs the FHIR server fewer requests than one per approval.
 */
describe('$approve: decisions taken at once share their requests', () => {
  it('ten approvals at once: fewer requests than ten alone, each Task approved with its own order and Provenance; a stale one alone refused', async () => {
    // The eleventh was changed by someone else since the page showed it.
    const { infusions, stale } = await infusionTasksOneStale(11, 10);
    const before = await forwarded();
    const answers = await Promise.all(
      infusions.map((t) =>
        request(service.url)
          .post(`/tasks/${t.id}/$approve`)
          .set(service.as('clinician'))
          .send({ versionId: t.meta!.versionId }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual([...Array(10).fill(200), 412]);
    // Alone, each approval costs 3 requests (test above).
    expect((await forwarded()) - before).toBeLessThan(3 * 10);
    // Operators see the sharing: more decisions' transactions than transaction requests.
    const metrics = (await request(service.url).get('/metrics').set(service.as('admin')).expect(200)).text;
    const counted = (name: string) =>
      Number(new RegExp(`^${name}\\{user="decisions",kind="transaction"\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
    expect(counted('kc_fhir_shared_calls_total')).toBeGreaterThan(counted('kc_fhir_shared_requests_total'));
    for (const t of infusions.slice(0, 10)) {
      expect(stateOf(await service.fhir.read<Task>('Task', t.id!))).toBe('approved');
      expect(await service.fhir.searchAll('MedicationRequest', { identifier: orderKeySearch(t.id!) })).toHaveLength(1);
      expect(await service.fhir.searchAll('Provenance', { target: `Task/${t.id}` })).toHaveLength(1);
    }
    expect(stateOf(await service.fhir.read<Task>('Task', stale.id!))).toBe('awaiting-approval');
    expect(await service.fhir.searchAll('MedicationRequest', { identifier: orderKeySearch(stale.id!) })).toEqual([]);
    expect(await service.fhir.searchAll('Provenance', { target: `Task/${stale.id}` })).toEqual([]);
  });
});

describe('$bulk-approve: the decisions of one request share theirs', () => {
  it('twelve Tasks in one bulk approval: fewer requests than twelve approvals alone, each approved once, a stale one refused', async () => {
    const { infusions, stale } = await infusionTasksOneStale(12, 5);
    const before = await forwarded();
    const bulk = await request(service.url)
      .post('/tasks/$bulk-approve')
      .set(service.as('clinician'))
      .send({ tasks: infusions.map((t) => ({ id: t.id, versionId: t.meta!.versionId })) })
      .expect(200);
    // Alone, each approval costs 3 requests.
    expect((await forwarded()) - before).toBeLessThan(3 * 11);
    expect(bulk.body.approved).toBe(11);
    expect(bulk.body.results.map((r: { id: string; result: string }) => [r.id, r.result])).toEqual(
      infusions.map((t, i) => [t.id, i === 5 ? 'refused' : 'approved']),
    );
    expect(bulk.body.results[5]).toMatchObject({ status: 412 });
    for (const t of infusions) {
      const orders = await service.fhir.searchAll('MedicationRequest', { identifier: orderKeySearch(t.id!) });
      expect(orders).toHaveLength(t === stale ? 0 : 1);
    }
  });
  it('a Task an EHR deletes between its read and the write: that one refused (404), the others approved', async () => {
    const { infusions } = await infusionTasksOneStale(4, 3);
    const deleted = infusions[1];
    // The EHR deletes it once the decisions are read, just before their transaction reaches the store.
    let deletes = 0;
    proxy.intercept = (method, _path, body) => {
      if (method !== 'POST' || !body.includes('"transaction"') || !body.includes(`"Task/${deleted.id}"`))
        return undefined;
      if (deletes++ === 0) void fetch(`${behind.sandbox.baseUrl}/Task/${deleted.id}`, { method: 'DELETE' });
      return {
        status: 404,
        body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] },
      };
    };
    try {
      const bulk = await request(service.url)
        .post('/tasks/$bulk-approve')
        .set(service.as('clinician'))
        .send({ tasks: infusions.slice(0, 3).map((t) => ({ id: t.id, versionId: t.meta!.versionId })) })
        .expect(200);
      expect(bulk.body.results.map((r: { result: string; status?: number }) => [r.result, r.status])).toEqual([
        ['approved', undefined],
        ['refused', 404],
        ['approved', undefined],
      ]);
      expect(bulk.body.results[1].message).toMatch(/was deleted on the FHIR server since you loaded it/);
    } finally {
      proxy.intercept = () => undefined;
    }
    for (const [i, t] of infusions.slice(0, 3).entries()) {
      const orders = await service.fhir.searchAll('MedicationRequest', { identifier: orderKeySearch(t.id!) });
      expect(orders).toHaveLength(i === 1 ? 0 : 1);
    }
  });
});

/**
 * `$activate` without an override judges the plan's contraindications on the one read it also writes overrides on.
 * It read them twice: when the second read missed an issue the first had found (deleted and found again meanwhile), it
 * went on to override the first read's issues with no reason and activate the plan.
 */
describe('$activate: the contraindications read once', () => {
  it('an issue found at the first read refuses the activation even when a second read would miss it', async () => {
    const { resource: patient } = await service.fhir.create<Patient>({ resourceType: 'Patient' });
    const subject = `Patient/${patient.id}`;
    await service.fhir.create(bodyWeight(70, '2026-11-01T09:00:00Z', subject));
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], subject));
    const carePlan = await applyPlan(service, 'ketamine-low-dose-series', subject);
    const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      implicated: `CarePlan/${carePlan.id}`,
    });
    expect(issue).toBeDefined();
    // Every read of the plan's issues after the first answers none, as if deleted in the EHR in between.
    let reads = 0;
    proxy.intercept = (method, path) =>
      method === 'GET' && path.includes('/DetectedIssue?') && reads++ > 0
        ? { status: 200, body: { resourceType: 'Bundle', type: 'searchset', total: 0, entry: [] } }
        : undefined;
    try {
      await request(service.url)
        .post(`/careplans/${carePlan.id}/$activate`)
        .set(service.as('clinician'))
        .send({ versionId: carePlan.meta!.versionId })
        .expect(422);
    } finally {
      proxy.intercept = () => undefined;
    }
    expect((await service.fhir.read<CarePlan>('CarePlan', carePlan.id!)).status).toBe('draft');
    expect((await service.fhir.read<DetectedIssue>('DetectedIssue', issue.id!)).mitigation).toBeUndefined();
  });
});

/**
 * The clinician page's worklist: a page of several patients' Tasks is decorated (names, ages, scores, the plans'
 * contraindications) from one FHIR batch; it took three requests per patient and one per plan.
 */
describe('GET /worklist/view: 1 FHIR request per page', () => {
  it('a page of three patients, each with a name and a plan, costs one request to the FHIR server', async () => {
    const enrolments = [];
    for (let i = 0; i < 3; i++) enrolments.push(await enrolPatient(service, 'ketamine-low-dose-series'));
    const before = await forwarded();
    const page = await request(service.url)
      .get('/worklist/view')
      .query({ count: 100 })
      .set(service.as('clinician'))
      .expect(200);
    expect((await forwarded()) - before).toBe(1);
    const items = page.body.items as { patient: string; view: { patient?: { name?: string } } }[];
    const onPage = new Set(items.map((i) => i.patient));
    expect(enrolments.every((e) => onPage.has(e.patient))).toBe(true);
    expect(items.every((i) => i.view.patient?.name === 'Enrolled')).toBe(true);
  });
});

/** A patient's timeline: the same five FHIR requests however many plans, decided Tasks and deciders it shows. */
describe('GET /patients/{id}/timeline: 5 FHIR requests', () => {
  it('two plans and two decisions cost the same five requests as none', async () => {
    const first = await enrolPatient(service, 'ketamine-low-dose-series');
    const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    // The second plan for the same patient: move it over (enrolPatient makes a new patient each time).
    const plan = await service.fhir.read<CarePlan>('CarePlan', carePlanId);
    await service.fhir.update<CarePlan>({ ...plan, subject: { reference: first.patient } });
    const drafts = (await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${first.carePlanId}` })).filter(
      (t) => stateOf(t) === 'awaiting-approval',
    );
    for (const task of drafts.slice(0, 2))
      await request(service.url)
        .post(`/tasks/${task.id}/$approve`)
        .set(service.as('clinician'))
        .send({ versionId: task.meta!.versionId })
        .expect(200);
    const before = await forwarded();
    const res = await request(service.url)
      .get(`/${first.patient.replace('Patient/', 'patients/')}/timeline`)
      .set(service.as('clinician'))
      .expect(200);
    expect((await forwarded()) - before).toBe(5);
    const events = res.body.events as { type: string; who?: string }[];
    expect(events.filter((e) => e.type === 'decision')).toHaveLength(2);
    expect((res.body.carePlans as unknown[]).length).toBe(2);
  });
});

// Last in the file: a merged record's rows cost the worklist page above one round more.
describe('$approve for a merged patient: the linked records read once', () => {
  // Since session 50; before, 6: the guard and the patient data loader each read the linked records, and the loader
  // read the patient's data under the record alone before reading it again under both.
  it('approving for a patient whose record was merged into another sends 4: the Task, the linked records, the data under both, the transaction', async () => {
    const infusion = await newInfusionAwaitingApproval();
    await mergedIntoNewRecord(service, infusion.for!.reference!, { name: [{ family: 'Kept' }] });
    const before = await forwarded();
    await approved(infusion);
    expect((await forwarded()) - before).toBe(4);
  });
});
