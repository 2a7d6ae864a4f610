import type { Bundle, BundleEntry, Patient, Provenance, Task } from '@medplum/fhirtypes';
import { Registry } from 'prom-client';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { CoalescedReads } from './coalesced-reads';
import { CoalescedTransactions, sharedGroups } from './coalesced-transactions';
import { FhirClient } from './fhir-client';
import { ifMatchFor } from './etag';
import { FhirNotFoundError, FhirUnavailableError, FhirVersionConflictError } from './fhir-errors';
import { SharedFhirRequests } from './shared-requests';

/** Requests sent at once share one request to the server; each caller still gets its own answer. */
describe('coalesced reads and transactions against the embedded sandbox over HTTP', () => {
  let sandbox: FhirSandbox;
  let fhir: FhirClient;
  let sent: { method: string; type?: string }[];
  /** Requests whose URL holds this text are held (a slow FHIR server) until the test calls `releaseSlow`. */
  const SLOW = 'slow-on-the-server';
  let releaseSlow: () => void;
  let slowReleased: Promise<void>;
  beforeAll(async () => {
    sandbox = await startFhirSandbox();
    const counting: typeof fetch = async (input, init) => {
      const body = init?.body ? (JSON.parse(init.body as string) as { type?: string }) : undefined;
      sent.push({ method: init?.method ?? 'GET', type: body?.type });
      if ((input instanceof Request ? input.url : input.toString()).includes(SLOW)) await slowReleased;
      return fetch(input, init);
    };
    fhir = new FhirClient({ baseUrl: sandbox.baseUrl, fetchImpl: counting, maxAttempts: 1 });
  });
  beforeEach(() => {
    sent = [];
    slowReleased = new Promise((resolve) => (releaseSlow = resolve));
  });
  afterAll(() => sandbox.close());

  const task = (family: string): Task => ({
    resourceType: 'Task',
    status: 'draft',
    intent: 'plan',
    description: family,
  });
  const decision = (current: Task, description: string, seenVersion = current.meta!.versionId!): BundleEntry[] => [
    {
      fullUrl: `urn:uuid:${crypto.randomUUID()}`,
      resource: { ...current, status: 'ready', description },
      request: { method: 'PUT', url: `Task/${current.id}`, ifMatch: ifMatchFor(seenVersion) },
    },
    {
      fullUrl: `urn:uuid:${crypto.randomUUID()}`,
      resource: {
        resourceType: 'Provenance',
        target: [{ reference: `Task/${current.id}` }],
        recorded: new Date().toISOString(),
        agent: [{ who: { display: description } }],
      },
      request: { method: 'POST', url: 'Provenance' },
    },
  ];

  describe('CoalescedTransactions', () => {
    it('a lone transaction is sent at once, alone', async () => {
      const transactions = new CoalescedTransactions(fhir, { maxBatch: 8, maxInFlight: 1 });
      const { resource } = await fhir.create(task('lone'));
      sent = [];
      const answer = await transactions.transaction(decision(resource, 'lone decision'));
      expect(answer.entry).toHaveLength(2);
      expect(sent).toEqual([{ method: 'POST', type: 'transaction' }]);
    });

    it('transactions sent at once share one request; each caller gets its own entries back', async () => {
      const transactions = new CoalescedTransactions(fhir, { maxBatch: 8, maxInFlight: 1 });
      const tasks = await Promise.all(Array.from({ length: 6 }, (_, i) => fhir.create(task(`t${i}`))));
      sent = [];
      const answers = await Promise.all(
        tasks.map(({ resource }, i) => transactions.transaction(decision(resource, `decision ${i}`))),
      );
      // The first went alone (nothing in flight); the five that came while it ran went together.
      expect(sent).toEqual([
        { method: 'POST', type: 'transaction' },
        { method: 'POST', type: 'transaction' },
      ]);
      answers.forEach((answer, i) => {
        expect(answer.entry).toHaveLength(2);
        expect(answer.entry![0].resource).toMatchObject({ id: tasks[i].resource.id, description: `decision ${i}` });
        expect(answer.entry![1].resource?.resourceType).toBe('Provenance');
      });
      for (const [i, { resource }] of tasks.entries())
        expect((await fhir.read<Task>('Task', resource.id!)).description).toBe(`decision ${i}`);
    });

    it("one caller's stale If-Match: the others land, it alone gets the conflict and writes nothing", async () => {
      const refused: number[] = [];
      const observed = new CoalescedTransactions(fhir, { maxBatch: 8, maxInFlight: 1 }, (e) => {
        if ('refused' in e) refused.push(e.refused);
      });
      const tasks = await Promise.all(Array.from({ length: 4 }, (_, i) => fhir.create(task(`c${i}`))));
      const stale = tasks[2].resource;
      await fhir.update({ ...stale, description: 'changed by someone else' }, { ifMatch: stale.meta!.versionId });
      const results = await Promise.allSettled(
        tasks.map(({ resource }, i) => observed.transaction(decision(resource, `decision ${i}`))),
      );
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(FhirVersionConflictError);
      // The first went alone (nothing in flight); the three sent while it ran shared one, refused, then each alone.
      expect(refused).toEqual([3]);
      expect((await fhir.read<Task>('Task', stale.id!)).description).toBe('changed by someone else');
      const provenances = await fhir.searchAll<Provenance>('Provenance', { target: `Task/${stale.id}` });
      expect(provenances).toEqual([]);
      for (const i of [0, 1, 3])
        expect((await fhir.read<Task>('Task', tasks[i].resource.id!)).description).toBe(`decision ${i}`);
    });

    it('an unreachable server fails every transaction of the group with its own error', async () => {
      const down = new FhirClient({ baseUrl: 'http://127.0.0.1:1/fhir', maxAttempts: 1 });
      const transactions = new CoalescedTransactions(down, { maxBatch: 8, maxInFlight: 1 });
      const { resource } = await fhir.create(task('down'));
      const results = await Promise.allSettled(
        [1, 2, 3].map((i) => transactions.transaction(decision(resource, `d${i}`))),
      );
      for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(FhirUnavailableError);
    });
  });

  describe('which transactions share a request (sharedGroups)', () => {
    const put = (url: string): BundleEntry => ({ request: { method: 'PUT', url } });
    const post = (fullUrl: string, ifNoneExist?: string): BundleEntry => ({
      fullUrl,
      request: { method: 'POST', url: 'Task', ifNoneExist },
    });

    it('independent ones share; one writing a resource another writes, or reusing a fullUrl, goes in another group', () => {
      expect(
        sharedGroups([[put('Task/a')], [put('Task/b')], [put('Task/a')], [post('urn:uuid:1')], [post('urn:uuid:1')]]),
      ).toEqual([
        [0, 1, 3],
        [2, 4],
      ]);
    });

    it('a conditional transaction goes alone (Medplum: SERIALIZABLE, 8 entries at most)', () => {
      expect(sharedGroups([[put('Task/a')], [post('urn:uuid:2', 'identifier=x|1')], [put('Task/b')]])).toEqual([
        [0, 2],
        [1],
      ]);
      expect(sharedGroups([[put('Task/a')], [put('Task?identifier=x|1')]])).toEqual([[0], [1]]);
    });

    it('no group holds more than 50 updates', () => {
      const thirty = (p: string) => Array.from({ length: 30 }, (_, i) => put(`Task/${p}${i}`));
      expect(sharedGroups([thirty('a'), thirty('b'), thirty('c')])).toEqual([[0], [1], [2]]);
      expect(sharedGroups([thirty('a'), [put('Task/x')], thirty('b')])).toEqual([[0, 1], [2]]);
    });
  });

  describe('CoalescedReads', () => {
    it('reads and searches sent at once share one batch; each gets its own answer, a missing one its 404', async () => {
      const reads = new CoalescedReads(fhir, { maxBatch: 8, maxInFlight: 1 });
      const patients = await Promise.all(
        ['Ng', 'Silva', 'Haddad'].map((family) =>
          fhir.create<Patient>({ resourceType: 'Patient', name: [{ family }] }),
        ),
      );
      sent = [];
      const first = reads.read<Patient>('Patient', patients[0].resource.id!);
      const rest = Promise.allSettled([
        reads.read<Patient>('Patient', patients[1].resource.id!),
        reads.read<Patient>('Patient', 'no-such-patient'),
        reads.search<Patient>('Patient', { _id: patients[2].resource.id!, _total: 'accurate' }),
        reads.read<Patient>('Patient', patients[2].resource.id!),
      ]);
      expect((await first).name?.[0].family).toBe('Ng');
      const [silva, missing, search, haddad] = await rest;
      expect(sent).toEqual([
        { method: 'GET', type: undefined },
        { method: 'POST', type: 'batch' },
      ]);
      expect((silva as PromiseFulfilledResult<Patient>).value).toMatchObject({
        name: [{ family: 'Silva' }],
        meta: { versionId: patients[1].resource.meta!.versionId },
      });
      expect((missing as PromiseRejectedResult).reason).toBeInstanceOf(FhirNotFoundError);
      const bundle = (search as PromiseFulfilledResult<Bundle<Patient>>).value;
      expect(bundle.type).toBe('searchset');
      expect(bundle.entry?.map((e) => e.resource?.name?.[0].family)).toEqual(['Haddad']);
      expect((haddad as PromiseFulfilledResult<Patient>).value.id).toBe(patients[2].resource.id);
    });

    it('read-only batches share the request with the reads sent beside them, each getting back its own entries', async () => {
      const reads = new CoalescedReads(fhir, { maxBatch: 8, maxInFlight: 1 });
      const { resource: kim } = await fhir.create<Patient>({ resourceType: 'Patient', name: [{ family: 'Kim' }] });
      const { resource: roy } = await fhir.create<Patient>({ resourceType: 'Patient', name: [{ family: 'Roy' }] });
      sent = [];
      const first = reads.read<Patient>('Patient', kim.id!);
      const [batch, read] = await Promise.all([
        reads.batch([
          { request: { method: 'GET', url: `Patient/${roy.id}` } },
          { request: { method: 'GET', url: 'Patient/no-such-patient' } },
          { request: { method: 'GET', url: `Patient?_id=${kim.id}` } },
        ]),
        reads.read<Patient>('Patient', roy.id!),
      ]);
      await first;
      expect(sent).toEqual([
        { method: 'GET', type: undefined },
        { method: 'POST', type: 'batch' },
      ]);
      expect(batch.entry).toHaveLength(3);
      expect(batch.entry![0].resource).toMatchObject({ id: roy.id, name: [{ family: 'Roy' }] });
      expect(batch.entry![1].response?.status).toMatch(/^404/);
      expect((batch.entry![2].resource as Bundle).entry?.[0].resource?.id).toBe(kim.id);
      expect(read.name?.[0].family).toBe('Roy');
      expect(() => reads.batch([{ request: { method: 'POST', url: 'Patient' } }])).toThrow('only a batch of reads');
    });

    it('one slow request does not hold up the calls queued behind it: they go in another request (counted)', async () => {
      const registry = new Registry();
      const reads = new SharedFhirRequests(fhir, registry).reads('test', { maxBatch: 8, maxInFlight: 1 });
      const { resource: ortiz } = await fhir.create<Patient>({
        resourceType: 'Patient',
        name: [{ family: 'Ortiz' }],
      });
      sent = [];
      let slowAnswered = false;
      const slow = reads.search<Patient>('Patient', { name: SLOW }).then((answer) => {
        slowAnswered = true;
        return answer;
      });
      // Both queued behind the slow search (maxInFlight 1): once it stalls (250 ms), they share a batch of their own.
      const queued = Promise.all([
        reads.read<Patient>('Patient', ortiz.id!),
        reads.search<Patient>('Patient', { _id: ortiz.id! }),
      ]);
      const waiting = async () => (await registry.getSingleMetric('kc_fhir_shared_waiting_calls')!.get()).values;
      expect(await waiting()).toEqual([{ labels: { user: 'test', kind: 'batch' }, value: 2 }]);
      const [read, search] = await queued;
      expect(await waiting()).toEqual([{ labels: { user: 'test', kind: 'batch' }, value: 0 }]);
      expect(read.name?.[0].family).toBe('Ortiz');
      expect(search.entry?.map((e) => e.resource?.id)).toEqual([ortiz.id]);
      expect(slowAnswered).toBe(false);
      const stalled = await registry.getSingleMetric('kc_fhir_shared_stalled_total')!.get();
      expect(stalled.values).toEqual([{ labels: { user: 'test', kind: 'batch' }, value: 1 }]);
      releaseSlow();
      expect((await slow).entry ?? []).toEqual([]);
      expect(sent).toEqual([
        { method: 'GET', type: undefined },
        { method: 'POST', type: 'batch' },
      ]);
    });

    it('a lone search is a plain search', async () => {
      const reads = new CoalescedReads(fhir, { maxBatch: 8, maxInFlight: 1 });
      const answer = await reads.search<Patient>('Patient', { name: 'Ng' });
      expect(answer.entry?.length).toBeGreaterThan(0);
      expect(sent).toEqual([{ method: 'GET', type: undefined }]);
    });
  });
});
