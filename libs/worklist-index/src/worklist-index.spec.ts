import { randomUUID } from 'node:crypto';
import type { CarePlan, Task } from '@medplum/fhirtypes';
import { Redis } from 'ioredis';
import type { FhirClient } from '@kc/fhir';
import { dropWorklistIndex, recordOnLists, ToDoIndex, WorklistIndex } from './worklist-index';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PROTOCOL = 'https://ketamine-careplans.example/fhir/PlanDefinition/ketamine-low-dose-series|1.0.0';

/**
 * What a write costs the index in Redis round trips: every FHIR write the service makes waits for record() before
 * it returns, so each round trip is paid by every follow-up event and every decision.
 */
describe('WorklistIndex.record', () => {
  let redis: Redis;
  let index: WorklistIndex;
  let roundTrips: string[];
  let prefix: string;
  const fhir = {
    searchAll: () => Promise.reject(new Error('no FHIR read expected')),
  } as unknown as FhirClient;

  beforeEach(() => {
    redis = new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 1 });
    prefix = `kc-test-${randomUUID().slice(0, 8)}`;
    index = new WorklistIndex(redis, fhir, prefix);
    roundTrips = [];
    for (const command of ['hset', 'hmget'] as const) {
      const original = redis[command].bind(redis) as (...args: unknown[]) => unknown;
      jest.spyOn(redis, command).mockImplementation(((...args: unknown[]) => {
        roundTrips.push(command);
        return original(...args);
      }) as never);
    }
    const pipeline = redis.pipeline.bind(redis);
    jest.spyOn(redis, 'pipeline').mockImplementation((...args: Parameters<Redis['pipeline']>) => {
      const p = pipeline(...args);
      const exec = p.exec.bind(p);
      p.exec = (...execArgs: Parameters<typeof exec>) => {
        roundTrips.push('pipeline');
        return exec(...execArgs);
      };
      return p;
    });
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  const carePlan: CarePlan = {
    resourceType: 'CarePlan',
    id: 'cp-1',
    status: 'active',
    intent: 'plan',
    subject: { reference: 'Patient/p-1' },
    instantiatesCanonical: [PROTOCOL],
  };
  const task = (id: string): Task => ({
    resourceType: 'Task',
    id,
    status: 'draft',
    intent: 'proposal',
    for: { reference: 'Patient/p-1' },
    basedOn: [{ reference: 'CarePlan/cp-1' }],
    restriction: { period: { start: '2027-01-10T00:00:00Z', end: '2027-01-11T00:00:00Z' } },
    meta: { lastUpdated: new Date().toISOString() },
  });

  it('a write holding the Tasks and their CarePlan (a follow-up transaction) costs one round trip', async () => {
    await index.record([task('t-1'), task('t-2'), carePlan]);
    expect(roundTrips).toEqual(['pipeline']);
    const page = await index.query({ count: 10 });
    expect(page.items.map((i) => [i.id, i.protocol])).toEqual([
      ['t-1', PROTOCOL],
      ['t-2', PROTOCOL],
    ]);
  });

  it("a Task written alone: its CarePlan's protocol as this process saw it, else looked up in the index", async () => {
    await index.record([carePlan]);
    roundTrips = [];
    await index.record([task('t-3')]);
    expect(roundTrips).toEqual(['pipeline']);
    // A plan another replica wrote: this process has not seen it, the index's map has.
    await redis.hset(`${prefix}:worklist:carePlan`, 'cp-2', PROTOCOL);
    roundTrips = [];
    await index.record([{ ...task('t-6'), basedOn: [{ reference: 'CarePlan/cp-2' }] }]);
    expect(roundTrips).toEqual(['hmget', 'pipeline']);
    expect((await index.query({ count: 10 })).items.map((i) => i.protocol)).toEqual([PROTOCOL, PROTOCOL]);
  });

  it('both lists see a write in one round trip: an approval moves the Task from the worklist to the to-do list', async () => {
    const toDo = new ToDoIndex(redis, fhir, prefix);
    await recordOnLists(redis, [index, toDo], [task('t-4'), carePlan]);
    expect(roundTrips).toEqual(['pipeline']);
    const approved: Task = {
      ...task('t-4'),
      status: 'ready',
      businessStatus: {
        coding: [{ system: 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans', code: 'approved' }],
      },
      meta: { lastUpdated: new Date(Date.now() + 1000).toISOString() },
    };
    roundTrips = [];
    await recordOnLists(redis, [index, toDo], [approved]);
    // The plan's protocol as this process saw it with the first write: both lists write together, nothing read.
    expect(roundTrips).toEqual(['pipeline']);
    expect((await index.query({ count: 10 })).items).toEqual([]);
    expect((await toDo.query({ count: 10 })).items.map((i) => [i.id, i.protocol])).toEqual([['t-4', PROTOCOL]]);
  });

  it('a server that answered without bodies: the Tasks are read back once for both lists', async () => {
    const reads: string[] = [];
    const reading = {
      searchAll: (type: string, params: { _id: string }) => {
        reads.push(`${type}?_id=${params._id}`);
        return Promise.resolve(type === 'Task' ? [task('t-5')] : [carePlan]);
      },
    } as unknown as FhirClient;
    const lists = [new WorklistIndex(redis, reading, prefix), new ToDoIndex(redis, reading, prefix)];
    await recordOnLists(redis, lists, [carePlan], ['Task/t-5/_history/1']);
    expect(reads).toEqual(['Task?_id=t-5']);
    expect((await lists[0].query({ count: 10 })).items.map((i) => i.id)).toEqual(['t-5']);
  });

  it('a Task notified by id alone is read back once for both lists, which are written together', async () => {
    const reads: string[] = [];
    const reading = {
      searchAll: (type: string, params: { _id: string }) => {
        reads.push(`${type}?_id=${params._id}`);
        return Promise.resolve(type === 'Task' ? [task('t-7')] : [carePlan]);
      },
    } as unknown as FhirClient;
    const lists = [new WorklistIndex(redis, reading, prefix), new ToDoIndex(redis, reading, prefix)];
    await index.record([carePlan]);
    roundTrips = [];
    expect(await WorklistIndex.refreshAll(lists, ['t-7'])).toEqual({ applied: 1, removed: 0 });
    expect(reads).toEqual(['Task?_id=t-7']);
    expect(roundTrips).toEqual(['pipeline']);
    expect((await lists[0].query({ count: 10 })).items.map((i) => i.id)).toEqual(['t-7']);
  });

  it('lists the Tasks of several patients (a name matches) soonest due first, exactly filtered, paged by cursor', async () => {
    const of = (id: string, patient: string, day: number, owner?: string): Task => ({
      ...task(id),
      for: { reference: `Patient/${patient}` },
      owner: owner ? { reference: owner } : undefined,
      restriction: { period: { start: `2027-01-${day}T00:00:00Z`, end: `2027-01-${day + 1}T00:00:00Z` } },
    });
    await index.record([
      of('a-late', 'p-a', 20),
      of('b-soon', 'p-b', 11, 'Practitioner/dr-1'),
      of('c-mid', 'p-c', 15),
      of('a-soon', 'p-a', 12, 'Practitioner/dr-1'),
      carePlan,
    ]);
    const ids = async (q: Parameters<WorklistIndex['query']>[0]) => {
      const seen: string[] = [];
      let after: string | undefined;
      do {
        const page = await index.query({ ...q, after });
        seen.push(...page.items.map((i) => i.id));
        after = page.next;
      } while (after);
      return seen;
    };
    expect(await ids({ patients: ['p-a', 'p-b'], count: 1 })).toEqual(['b-soon', 'a-soon', 'a-late']);
    expect((await index.query({ patients: ['p-a', 'p-b'], count: 1 })).total).toBe(3);
    expect(await ids({ patients: ['p-a', 'p-c'], owner: 'Practitioner/dr-1', count: 5 })).toEqual(['a-soon']);
    expect(await ids({ patients: ['p-a', 'p-c'], dueBefore: new Date('2027-01-16T00:00:00Z'), count: 5 })).toEqual([
      'a-soon',
      'c-mid',
    ]);
    expect(await index.query({ patients: [], count: 5 })).toEqual({ total: 0, items: [], next: undefined });
  });
});

describe('dropWorklistIndex', () => {
  it("deletes this prefix's worklist keys only: not its queues', not another deployment's sharing the Redis", async () => {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const mine = `kc-test-${randomUUID().slice(0, 8)}`;
    const other = `${mine}x`;
    try {
      const fhir = {} as FhirClient;
      const task = (id: string): Task => ({
        resourceType: 'Task',
        id,
        status: 'draft',
        intent: 'proposal',
        basedOn: [{ reference: 'CarePlan/cp-1' }],
        meta: { lastUpdated: '2026-12-02T10:00:00.000Z' },
      });
      await redis.hset(`${mine}:worklist:carePlan`, 'cp-1', PROTOCOL);
      await redis.hset(`${other}:worklist:carePlan`, 'cp-1', PROTOCOL);
      await new WorklistIndex(redis, fhir, mine).apply(Array.from({ length: 1500 }, (_, i) => task(`t${i}`)));
      await new WorklistIndex(redis, fhir, other).apply([task('kept')]);
      await redis.set(`${mine}:followups:id`, '7');
      const before = (await redis.keys(`${mine}:worklist:*`)).length;
      expect(before).toBeGreaterThan(3);

      expect(await dropWorklistIndex(redis, mine)).toBe(before);
      expect(await redis.keys(`${mine}:worklist:*`)).toEqual([]);
      expect(await redis.get(`${mine}:followups:id`)).toBe('7');
      expect(await redis.hkeys(`${other}:worklist:item`)).toEqual(['kept']);
    } finally {
      const keys = [...(await redis.keys(`${mine}:*`)), ...(await redis.keys(`${other}:*`))];
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
  });
});
