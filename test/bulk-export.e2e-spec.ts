import request from 'supertest';
import { SignJWT } from 'jose';
import type { AuditEvent, CapabilityStatement, Group, OperationOutcome, Resource, Task } from '@medplum/fhirtypes';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { FhirClient } from '@kc/fhir';
import { QUEUES } from '@kc/queue';
import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { enrolPatient, waitFor, writeEhrTasks } from './support/clinic';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy';
import { startTestService, TEST_JWT_SECRET, type TestService } from './support/test-service';

const ASYNC = { Prefer: 'respond-async', Accept: 'application/fhir+json' };

interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  error: unknown[];
}

/**
 * FHIR Bulk Data export (`$export`, since session 62): an EHR integration asks for everything this API reads (or every
 * patient's data, or some patients'), the worker writes it in the background as NDJSON files on the FHIR server
 * (Binaries), and the client polls a status URL (202 with X-Progress) until a manifest names the files. Before, an EHR
 * could only page through every search itself.
 */
describe('Bulk Data export', () => {
  let sandbox: FhirSandbox;
  let proxy: FlakyProxy;
  let service: TestService;
  /** The FHIR server as the test reads it (not through the proxy). */
  let store: FhirClient;
  let patients: string[];

  beforeAll(async () => {
    sandbox = await startFhirSandbox();
    proxy = await startFlakyProxy(sandbox.baseUrl);
    service = await startTestService({
      fhirBaseUrl: proxy.baseUrl,
      jobAttempts: 3,
      jobBackoffMs: 50,
      // Small pages and files, so a few patients' Tasks fill several files (each a whole page or more).
      bulkExport: { maxFileBytes: 6_000, pageSize: 20, retentionMs: 600_000, perClient: 2 },
      auth: { jwtSecret: TEST_JWT_SECRET, smartRoles: { system: 'integration' } },
    });
    store = new FhirClient({ baseUrl: sandbox.baseUrl, maxAttempts: 1 });
    patients = [];
    for (let i = 0; i < 3; i++) patients.push((await enrolPatient(service, 'ketamine-low-dose-series')).patient);
    // And an EHR's Tasks of a patient: more than a page of them.
    await writeEhrTasks(store, 'Patient/ehr-1', 45);
  }, 90_000);
  afterAll(async () => {
    await service.stop();
    await proxy.close();
    await sandbox.close();
  });

  const token = (claims: Record<string, unknown>, subject = 'ehr-bulk') =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(subject)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
  const as = async (claims: Record<string, unknown> = { roles: ['integration'] }, subject?: string) => ({
    Authorization: `Bearer ${await token(claims, subject)}`,
  });
  const pathOf = (url: string) => url.slice(service.url.length);
  const refusal = (res: request.Response) => (res.body as OperationOutcome).issue?.[0]?.details?.text;

  async function kickOff(path: string, auth: Record<string, string>): Promise<string> {
    const res = await request(service.url).get(path).set(ASYNC).set(auth).expect(202);
    const location = res.headers['content-location'];
    expect(location).toMatch(new RegExp(`^${service.url}/fhir/bulk-export/[0-9a-f-]{36}$`));
    return location;
  }

  /** Polls the status URL as a client does until the manifest; every answer before it a 202 with X-Progress. */
  async function manifestAt(statusUrl: string, auth: Record<string, string>, progress: string[] = []) {
    const res = await waitFor(
      async () => {
        const answer = await request(service.url).get(pathOf(statusUrl)).set(auth);
        if (answer.status === 202) {
          progress.push(answer.headers['x-progress']);
          expect(answer.headers['retry-after']).toBeDefined();
          return undefined;
        }
        return answer;
      },
      'the export to finish',
      30_000,
    );
    expect(res.status).toBe(200);
    return res;
  }

  async function download(manifest: Manifest, auth: Record<string, string>): Promise<Resource[]> {
    const resources: Resource[] = [];
    for (const file of manifest.output) {
      const res = await request(service.url).get(pathOf(file.url)).set(auth).buffer(true).parse(text).expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/fhir\+ndjson/);
      const lines = (res.body as string).split('\n').filter(Boolean);
      expect(lines).toHaveLength(file.count);
      for (const line of lines) {
        const resource = JSON.parse(line) as Resource;
        expect(resource.resourceType).toBe(file.type);
        resources.push(resource);
      }
    }
    return resources;
  }

  const idsOf = (resources: Resource[], type: string) =>
    resources.filter((r) => r.resourceType === type).map((r) => r.id!);

  it('an EHR exports every care plan and task in the background, each resource once, as it stood when asked', async () => {
    // A Bulk Data client finds the operation in the CapabilityStatement, as the IG says.
    const metadata = (await request(service.url).get('/fhir/metadata').expect(200)).body as CapabilityStatement;
    expect(metadata.instantiates).toEqual(['http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data']);
    expect(metadata.rest![0].operation).toEqual([
      { name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' },
    ]);
    const auth = await as();
    const statusUrl = await kickOff('/fhir/$export?_type=CarePlan,Task', auth);
    const res = await manifestAt(statusUrl, auth);
    const manifest = res.body as Manifest;
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.request).toBe(`${service.url}/fhir/$export?_type=CarePlan,Task`);
    expect(Date.parse(res.headers.expires)).toBeGreaterThan(Date.now());
    // Several files of Tasks: a file holds whole pages, no more than BULK_EXPORT_FILE_MAX_BYTES but for one page.
    expect(manifest.output.filter((f) => f.type === 'Task').length).toBeGreaterThan(1);
    expect(manifest.output.map((f) => f.type)).toEqual([
      ...manifest.output.filter((f) => f.type === 'CarePlan').map(() => 'CarePlan'),
      ...manifest.output.filter((f) => f.type === 'Task').map(() => 'Task'),
    ]);

    const exported = await download(manifest, auth);
    const tasks = await store.searchAll<Task>('Task', { _count: 1000 });
    const carePlans = await store.searchAll('CarePlan', { _count: 1000 });
    const stoodThen = (r: Resource) => r.meta!.lastUpdated! <= manifest.transactionTime;
    expect(idsOf(exported, 'Task').sort()).toEqual(
      tasks
        .filter(stoodThen)
        .map((t) => t.id)
        .sort(),
    );
    expect(idsOf(exported, 'CarePlan').sort()).toEqual(
      carePlans
        .filter(stoodThen)
        .map((c) => c.id)
        .sort(),
    );
    expect(new Set(exported.map((r) => `${r.resourceType}/${r.id}`)).size).toBe(exported.length);
    expect(idsOf(exported, 'CarePlan')).toHaveLength(3);

    // Who downloaded which patient's data is on the audit trail, as for every read of the API.
    await waitFor(
      async () =>
        (await store.searchAll<AuditEvent>('AuditEvent', { entity: patients[0], _count: 100 })).some((e) =>
          e.agent?.some((a) => a.who?.identifier?.value === 'ehr-bulk'),
        ),
      "the download's access audit",
    );
  });

  it('_since exports only what changed after it; Patient/$export only patient data, POST for named patients', async () => {
    const auth = await as();
    const before = new Date().toISOString();
    const late = await enrolPatient(service, 'ketamine-low-dose-series');
    const since = await manifestAt(await kickOff(`/fhir/$export?_type=CarePlan&_since=${before}`, auth), auth);
    const changed = await download(since.body as Manifest, auth);
    expect(changed.map((c) => (c as { subject?: { reference?: string } }).subject?.reference)).toEqual([late.patient]);

    const everyPatient = await manifestAt(await kickOff('/fhir/Patient/$export', auth), auth);
    const types = new Set((everyPatient.body as Manifest).output.map((f) => f.type));
    expect(types.has('CarePlan') && types.has('Task')).toBe(true);
    expect(types.has('PlanDefinition')).toBe(false);

    const named = await request(service.url)
      .post('/fhir/Patient/$export')
      .set(ASYNC)
      .set(auth)
      .send({
        resourceType: 'Parameters',
        parameter: [
          { name: 'patient', valueReference: { reference: patients[1] } },
          { name: '_type', valueString: 'CarePlan,Task' },
        ],
      })
      .expect(202);
    const theirs = await download((await manifestAt(named.headers['content-location'], auth)).body as Manifest, auth);
    const theirTasks = await store.searchAll<Task>('Task', { patient: patients[1], _count: 1000 });
    expect(idsOf(theirs, 'Task').sort()).toEqual(theirTasks.map((t) => t.id).sort());
    expect(theirs.every((r) => JSON.stringify(r).includes(patients[1]))).toBe(true);
  });

  it('_typeFilter narrows a type to a search, _elements its resources; Prefer: handling=lenient leaves out what is not supported, saying so', async () => {
    const auth = await as();
    const res = await request(service.url)
      .get('/fhir/$export')
      .query({
        _type: 'Task,CarePlan',
        _typeFilter: 'Task?patient=Patient/ehr-1',
        _elements: 'Task.for',
        includeAssociatedData: 'LatestProvenanceResources',
      })
      .set({ ...ASYNC, Prefer: 'respond-async, handling=lenient' })
      .set(auth)
      .expect(202);
    const said = (res.body as OperationOutcome).issue.map((i) => i.details?.text);
    expect(said).toContain('Ignored, not supported: includeAssociatedData');
    const exported = await download((await manifestAt(res.headers['content-location'], auth)).body as Manifest, auth);
    const theirs = await store.searchAll<Task>('Task', { patient: 'Patient/ehr-1', _count: 1000 });
    expect(idsOf(exported, 'Task').sort()).toEqual(theirs.map((t) => t.id).sort());
    // _elements: the Tasks with what was asked and what a Task requires, marked SUBSETTED; the CarePlans whole.
    for (const t of exported.filter((r): r is Task => r.resourceType === 'Task')) {
      expect(Object.keys(t).sort()).toEqual(['for', 'id', 'intent', 'meta', 'resourceType', 'status']);
      expect(t.meta?.tag).toContainEqual(expect.objectContaining({ code: 'SUBSETTED' }));
    }
    const carePlans = exported.filter((r) => r.resourceType === 'CarePlan');
    expect(carePlans.length).toBeGreaterThanOrEqual(3);
    expect(carePlans.every((c) => !c.meta?.tag?.some((t) => t.code === 'SUBSETTED'))).toBe(true);
  });

  it("Group/<id>/$export writes the data of the Group's active patients: a cohort the EHR keeps", async () => {
    const auth = await as();
    const { resource: group } = await store.create<Group>({
      resourceType: 'Group',
      type: 'person',
      actual: true,
      member: [
        { entity: { reference: patients[0] } },
        { entity: { reference: patients[1] }, inactive: true },
        { entity: { reference: patients[2] } },
        { entity: { reference: 'Practitioner/not-a-patient' } },
      ],
    });
    const manifest = (await manifestAt(await kickOff(`/fhir/Group/${group.id}/$export?_type=Task`, auth), auth))
      .body as Manifest;
    const exported = await download(manifest, auth);
    const theirs = await store.searchAll<Task>('Task', { patient: `${patients[0]},${patients[2]}`, _count: 1000 });
    expect(idsOf(exported, 'Task').sort()).toEqual(theirs.map((t) => t.id).sort());
    expect(theirs.length).toBeGreaterThan(0);

    // A Group with no patient exports nothing (not everyone's data); one the server has not is 404.
    const { resource: empty } = await store.create<Group>({ resourceType: 'Group', type: 'person', actual: true });
    const none = (await manifestAt(await kickOff(`/fhir/Group/${empty.id}/$export`, auth), auth)).body as Manifest;
    expect(none.output).toEqual([]);
    const missing = await request(service.url)
      .get('/fhir/Group/no-such-group/$export')
      .set(ASYNC)
      .set(auth)
      .expect(404);
    expect(refusal(missing)).toMatch(/Group\/no-such-group is not found/);
    // A token whose scopes do not read the Group is refused.
    const noGroup = await as({ scope: 'system/Task.rs' }, 'ehr-no-group');
    await request(service.url).get(`/fhir/Group/${group.id}/$export`).set(ASYNC).set(noGroup).expect(403);
  });

  it('a FHIR server failing mid-export costs the page being read: the retry goes on from the last file, each resource once', async () => {
    const patient = `Patient/bulk-${Date.now()}`;
    await writeEhrTasks(store, patient, 70);
    // The third page of Tasks fails once (a 500: not retried by the FHIR client, so the job's attempt fails).
    let cursorPages = 0;
    let firstPages = 0;
    proxy.intercept = (method, path) => {
      if (!isExportPage(method, path)) return undefined;
      if (!path.includes('_cursor=')) {
        if (!path.includes('_total=accurate')) firstPages++;
        return undefined;
      }
      cursorPages++;
      return cursorPages === 2
        ? { status: 500, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] } }
        : undefined;
    };
    try {
      const auth = await as();
      const res = await manifestAt(await kickOff(`/fhir/$export?_type=Task`, auth), auth);
      const exported = await download(res.body as Manifest, auth);
      const tasks = await store.searchAll<Task>('Task', { _count: 1000 });
      expect(idsOf(exported, 'Task').sort()).toEqual(tasks.map((t) => t.id).sort());
      expect(new Set(idsOf(exported, 'Task')).size).toBe(exported.length);
      // The retry went on from where the last file ended (its next link), not from the first page again.
      expect(firstPages).toBe(1);
      expect(cursorPages).toBeGreaterThan(2);
    } finally {
      proxy.intercept = () => undefined;
    }
  });

  it("a page link the server no longer has (HAPI's expired _getpages) begins that search again, its files dropped", async () => {
    // The third page fails once (the attempt fails, the first file written); the retry's link to the second is gone.
    let cursorPages = 0;
    let firstPages = 0;
    proxy.intercept = (method, path) => {
      if (!isExportPage(method, path)) return undefined;
      if (!path.includes('_cursor=')) {
        firstPages++;
        return undefined;
      }
      cursorPages++;
      const failure = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] };
      if (cursorPages === 2) return { status: 500, body: failure };
      if (cursorPages === 3) return { status: 410, body: failure };
      return undefined;
    };
    try {
      const binariesBefore = (await store.searchAll('Binary', { _count: 1000 })).length;
      const auth = await as();
      const manifest = (await manifestAt(await kickOff('/fhir/$export?_type=Task', auth), auth)).body as Manifest;
      const exported = await download(manifest, auth);
      const tasks = await store.searchAll<Task>('Task', { _count: 1000 });
      expect(idsOf(exported, 'Task').sort()).toEqual(tasks.map((t) => t.id).sort());
      expect(firstPages).toBe(2);
      // The file written before the link was gone is deleted: only the manifest's files are new on the server.
      expect((await store.searchAll('Binary', { _count: 1000 })).length).toBe(binariesBefore + manifest.output.length);
    } finally {
      proxy.intercept = () => undefined;
    }
  });

  it("shows its progress while it runs, and a client's DELETE cancels it and deletes the files written", async () => {
    const auth = await as();
    // Each request to the FHIR server held a moment: long enough to see the export running.
    proxy.delayMs = 150;
    let statusUrl: string;
    try {
      statusUrl = await kickOff('/fhir/$export?_type=Task', auth);
      const running = await waitFor(
        async () => {
          const answer = await request(service.url).get(pathOf(statusUrl)).set(auth).expect(202);
          return /^\d+% complete \(Task: [\d,]+ of [\d,]+\)$/.test(answer.headers['x-progress']) && answer;
        },
        'the export to be counted',
        20_000,
      );
      expect(running.headers['x-progress']).toMatch(/complete/);
    } finally {
      proxy.delayMs = 0;
    }
    const finished = await manifestAt(statusUrl, auth);
    const binaries = (await store.searchAll('Binary', { _count: 1000 })).map((b) => b.id!);
    const files = (finished.body as Manifest).output;
    expect(files.length).toBeGreaterThan(0);

    await request(service.url).delete(pathOf(statusUrl)).set(auth).expect(202);
    await request(service.url).get(pathOf(statusUrl)).set(auth).expect(404);
    await request(service.url).get(pathOf(files[0].url)).set(auth).expect(404);
    // Its Binaries are deleted from the FHIR server (the others' stay).
    await waitFor(
      async () => (await store.searchAll('Binary', { _count: 1000 })).length === binaries.length - files.length,
      'the cancelled export’s files to be deleted',
    );
  });

  it('refuses what it cannot do with a FHIR OperationOutcome: no Prefer, unknown types and parameters, other roles and scopes', async () => {
    const auth = await as();
    const no = await request(service.url).get('/fhir/$export').set(auth).expect(400);
    expect(refusal(no)).toMatch(/Prefer: respond-async/);
    const unknown = await request(service.url).get('/fhir/$export?_type=Patient').set(ASYNC).set(auth).expect(400);
    expect(refusal(unknown)).toMatch(/does not export Patient/);
    const elements = await request(service.url)
      .get('/fhir/$export?_elements=Task.restriction.period')
      .set(ASYNC)
      .set(auth)
      .expect(400);
    expect(refusal(elements)).toMatch(/_elements: Task.restriction.period is not a root element/);
    const associated = await request(service.url)
      .get('/fhir/$export?includeAssociatedData=LatestProvenanceResources')
      .set(ASYNC)
      .set(auth)
      .expect(400);
    expect(refusal(associated)).toMatch(/Not supported by this server: includeAssociatedData/);
    const filter = await request(service.url)
      .get('/fhir/$export?_typeFilter=Task%3Fpatient.name%3Dx')
      .set(ASYNC)
      .set(auth)
      .expect(400);
    expect(refusal(filter)).toMatch(/_typeFilter Task cannot search by patient.name/);
    const since = await request(service.url).get('/fhir/$export?_since=yesterday').set(ASYNC).set(auth).expect(400);
    expect(refusal(since)).toMatch(/_since must be a FHIR instant/);
    const format = await request(service.url)
      .get('/fhir/$export?_outputFormat=text/csv')
      .set(ASYNC)
      .set(auth)
      .expect(400);
    expect(refusal(format)).toMatch(/_outputFormat/);
    await request(service.url).get('/fhir/Patient/$export?patient=Patient/1').set(ASYNC).set(auth).expect(400);
    await request(service.url).get('/fhir/$export').set(ASYNC).set(service.as('clinician')).expect(403);
    await request(service.url).get('/fhir/$export').set(ASYNC).expect(401);
    // The audit trail is the administrators', and only when named.
    await request(service.url).get('/fhir/$export?_type=AuditEvent').set(ASYNC).set(auth).expect(403);

    // Scopes: a system/ scope exports what it names; a patient/ scope exports nothing.
    const carePlansOnly = await as({ scope: 'system/CarePlan.rs' }, 'ehr-scoped');
    const scoped = await manifestAt(await kickOff('/fhir/$export', carePlansOnly), carePlansOnly);
    expect(new Set((scoped.body as Manifest).output.map((f) => f.type))).toEqual(new Set(['CarePlan']));
    const asked = await request(service.url).get('/fhir/$export?_type=Task').set(ASYNC).set(carePlansOnly).expect(403);
    expect(refusal(asked)).toMatch(/may not read Task/);
    const patientScope = await as({ roles: ['integration'], scope: 'patient/*.rs', patient: patients[0] }, 'app');
    await request(service.url).get('/fhir/$export').set(ASYNC).set(patientScope).expect(403);

    // Another client cannot read this one's export, nor its files.
    const theirs = await as({ roles: ['integration'] }, 'ehr-other');
    const statusUrl = await kickOff('/fhir/$export?_type=CarePlan', auth);
    const manifest = (await manifestAt(statusUrl, auth)).body as Manifest;
    await request(service.url).get(pathOf(statusUrl)).set(theirs).expect(404);
    await request(service.url).get(pathOf(manifest.output[0].url)).set(theirs).expect(404);
    await request(service.url).delete(pathOf(statusUrl)).set(theirs).expect(404);
    await request(service.url).get(pathOf(manifest.output[0].url)).set(service.as('admin')).expect(200);
  });

  it('a client may have BULK_EXPORT_PER_CLIENT exports running; one more is 429 with Retry-After', async () => {
    const auth = await as({ roles: ['integration'] }, 'ehr-busy');
    const exportsQueue = service.app.get<Queue>(getQueueToken(QUEUES.exports));
    const binariesBefore = (await store.searchAll('Binary', { _count: 1000 })).length;
    proxy.delayMs = 200;
    try {
      const first = await kickOff('/fhir/$export?_type=Task', auth);
      const second = await kickOff('/fhir/$export?_type=Task', auth);
      const third = await request(service.url).get('/fhir/$export?_type=Task').set(ASYNC).set(auth).expect(429);
      expect(third.headers['retry-after']).toBeDefined();
      expect(refusal(third)).toMatch(/2 bulk exports running already/);
      // Cancelled while the worker writes the first: it stops at its next file and deletes it; nothing is left.
      await waitFor(async () => (await exportsQueue.getActiveCount()) === 1, 'the first export to be written');
      await request(service.url).delete(pathOf(first)).set(auth).expect(202);
      await request(service.url).delete(pathOf(second)).set(auth).expect(202);
      await kickOff('/fhir/$export?_type=CarePlan', auth);
    } finally {
      proxy.delayMs = 0;
    }
    // An operator sees who is taking which data out (cancelled ones gone), and the kick-offs are counted.
    await request(service.url).get('/operations/bulk-exports').set(auth).expect(403);
    const listed = (await request(service.url).get('/operations/bulk-exports').set(service.as('admin')).expect(200))
      .body as { owner: string; types: string[]; status: string; progress: string }[];
    expect(listed.filter((e) => e.owner === 'ehr-busy')).toEqual([
      expect.objectContaining({ types: ['CarePlan'], progress: expect.stringMatching(/queued|complete|counting/) }),
    ]);
    const metrics = (await request(service.url).get('/metrics').set(service.as('admin')).expect(200)).text;
    expect(metrics).toMatch(/kc_bulk_export_requests_total\{level="system",result="throttled"\} 1/);
    expect(metrics).toMatch(/kc_bulk_export_requests_total\{level="system",result="accepted"\} \d+/);
    await waitFor(
      async () =>
        (await exportsQueue.getActiveCount()) + (await exportsQueue.getWaitingCount()) === 0 &&
        (await store.searchAll('Binary', { _count: 1000 })).length === binariesBefore + 1,
      'the cancelled exports’ files to be deleted (the last export’s one file kept)',
    );
  });
});

describe('Bulk Data export files expire', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({
      bulkExport: { maxFileBytes: 6_000, pageSize: 20, retentionMs: 1_500, perClient: 2 },
    });
    await enrolPatient(service, 'ketamine-low-dose-series');
  }, 60_000);
  afterAll(() => service.stop());

  it("a finished export's files are deleted from the FHIR server once BULK_EXPORT_RETENTION_SECONDS have passed", async () => {
    const auth = service.as('integration');
    const kickOff = await request(service.url).get('/fhir/$export?_type=Task').set(ASYNC).set(auth).expect(202);
    const statusPath = kickOff.headers['content-location'].slice(service.url.length);
    const done = await waitFor(async () => {
      const res = await request(service.url).get(statusPath).set(auth);
      return res.status === 200 && res;
    }, 'the export to finish');
    const binaries = await service.fhir.searchAll('Binary', { _count: 1000 });
    expect(binaries.length).toBe((done.body as Manifest).output.length);
    expect(Date.parse(done.headers.expires)).toBeLessThanOrEqual(Date.now() + 1_500);
    await waitFor(
      async () => (await request(service.url).get(statusPath).set(auth)).status === 404,
      'the export to expire',
    );
    await waitFor(
      async () => (await service.fhir.searchAll('Binary', { _count: 1000 })).length === 0,
      'its files to go',
    );
  });
});

/**
 * A page of an export's Task search: its searches alone carry `_lastUpdated=le<its instant>` (the service's own Task
 * searches, such as the overdue sweep a quarter-hour may start mid-test, do not), first pages and cursor pages alike.
 */
function isExportPage(method: string, path: string): boolean {
  return method === 'GET' && path.includes('/Task?') && /[?&]_lastUpdated=le/.test(path);
}

/** Supertest's parser for a body it does not know (NDJSON): the text as it came. */
function text(res: request.Response, done: (err: Error | null, body: string) => void): void {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (body += chunk));
  res.on('end', () => done(null, body));
}
