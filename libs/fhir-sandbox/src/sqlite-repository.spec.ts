import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseSearchRequest, type SearchRequest, type WithId } from '@medplum/core';
import { MemoryRepository } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, Patient, Period, Resource, Task } from '@medplum/fhirtypes';
import { indexFhirDefinitions } from '@kc/fhir-definitions';
import { startFhirSandbox, type FhirSandbox } from './fhir-sandbox-server';
import { DB_FILE, SqliteRepository } from './sqlite-repository';
import { withMedplumPageSize } from './search-paging';

/** Lets the crash tests' child processes load the store from its TypeScript sources. */
const TS_REGISTER = path.join(__dirname, '../../../test/support/ts-register.cjs');

/**
 * The SQLite store against Medplum's MemoryRepository (the store it replaces): the same data, the same queries,
 * the same answers over HTTP (entries, order, total, paging links); transactions all or nothing; data that
 * survives closing, reopening and a killed process.
 */

const SYS_A = 'https://example.org/keys-a';
const SYS_B = 'https://example.org/keys-b';
const CODES = 'https://example.org/codes';
const TAGS = 'https://example.org/tags';

/** Parameters whose expression gives a value from nothing (`deceased`), or filters on a property (`email`). */
const PATIENT_EXTRAS: Partial<Patient>[] = [
  {},
  { deceasedBoolean: false },
  { deceasedDateTime: '2026-12-01' },
  { telecom: [{ system: 'email', value: 'p3@example.org' }] },
];

/** A clinic-shaped data set with ids, versions and timestamps fixed, so both stores hold identical resources. */
function dataSet(): Resource[] {
  const out: Resource[] = [];
  const meta = (i: number, extra: object = {}) => ({
    versionId: `v-${i}`,
    lastUpdated: new Date(Date.UTC(2027, 0, 1 + (i % 20), i % 24, (i * 7) % 60)).toISOString(),
    ...extra,
  });
  for (let p = 0; p < 4; p++) {
    out.push({
      resourceType: 'Patient',
      id: `p${p}`,
      meta: meta(900 + p),
      name: [{ family: `Fam${p}` }],
      ...PATIENT_EXTRAS[p],
    });
    for (let c = 0; c < 2; c++) {
      out.push({
        resourceType: 'CarePlan',
        id: `cp${p}-${c}`,
        meta: meta(800 + p * 2 + c),
        status: c ? 'active' : 'draft',
        intent: 'plan',
        subject: { reference: `Patient/p${p}` },
        period: { start: `2027-01-0${1 + c}` },
      });
    }
    for (let o = 0; o < 3; o++) {
      out.push({
        resourceType: 'Observation',
        id: `obs${p}-${o}`,
        meta: meta(700 + p * 3 + o),
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: o === 2 ? '8480-6' : '29463-7' }] },
        subject: { reference: `Patient/p${p}` },
        effectiveDateTime: `2026-11-0${1 + o}T09:00:00Z`,
        valueQuantity: { value: 70 + o, unit: 'kg' },
      });
    }
  }
  for (let i = 0; i < 12; i++) {
    out.push({
      resourceType: 'Procedure',
      id: `pr${i}`,
      meta: meta(600 + i),
      status: i % 3 ? 'completed' : 'in-progress',
      subject: { reference: `Patient/p${i % 4}` },
      basedOn: [{ reference: `CarePlan/cp${i % 4}-${i % 2}` }],
      ...(i % 2
        ? { performedPeriod: { start: `2027-01-${10 + i}T09:00:00Z`, end: `2027-01-${10 + i}T10:00:00Z` } }
        : { performedDateTime: `2027-01-${10 + i}T09:30:00Z` }),
    });
  }
  for (let i = 0; i < 60; i++) {
    const statuses = ['requested', 'accepted', 'rejected', 'completed'] as const;
    const task: Task = {
      resourceType: 'Task',
      id: `t${i}`,
      meta: meta(i, i % 5 === 0 ? { tag: [{ system: TAGS, code: `tag${i % 2}` }] } : {}),
      status: statuses[i % 4],
      intent: 'plan',
      for: { reference: `Patient/p${i % 4}` },
      basedOn: [{ reference: `CarePlan/cp${i % 4}-${i % 2}` }],
      focus: { reference: `Procedure/pr${i % 12}` },
      ...(i % 6 === 0 ? {} : { authoredOn: `2027-01-${String(1 + (i % 9)).padStart(2, '0')}T08:00:00Z` }),
      ...(i % 7 === 3 ? { partOf: [{ reference: `Task/t${i - 1}` }] } : {}),
      code: { coding: [{ system: CODES, code: i % 3 ? 'post-infusion-check' : 'next-session' }] },
      businessStatus: { coding: [{ system: CODES, code: i % 2 ? 'awaiting-approval' : 'approved' }] },
      owner: i % 4 === 1 ? { reference: 'Practitioner/dr1' } : undefined,
      restriction: { period: { start: `2027-02-0${1 + (i % 8)}T00:00:00Z`, end: `2027-02-1${i % 8}T00:00:00Z` } },
      identifier:
        i % 10 === 9
          ? [{ value: `NoSys-${i}` }]
          : [{ system: i % 2 ? SYS_A : SYS_B, value: `Key-${i}` }, ...(i % 4 === 0 ? [{ value: `extra-${i}` }] : [])],
    };
    out.push(JSON.parse(JSON.stringify(task)) as Task);
  }
  for (let i = 0; i < 5; i++) {
    out.push({
      resourceType: 'DetectedIssue',
      id: `di${i}`,
      meta: meta(500 + i),
      status: 'final',
      implicated: [{ reference: `CarePlan/cp${i % 4}-0` }],
    });
    out.push({
      resourceType: 'Provenance',
      id: `prov${i}`,
      meta: meta(400 + i),
      target: [{ reference: `Task/t${i}/_history/v-${i}` }, { reference: `Task/t${i}` }],
      recorded: '2027-01-05T00:00:00Z',
      agent: [{ who: { reference: 'Practitioner/dr1' } }],
    });
  }
  return out;
}

/** The queries the service, its worker and its EHR clients make, and the edges of each kind of parameter. */
const QUERIES = [
  `Task?identifier=${SYS_A}|key-3`,
  `Task?identifier=${SYS_A.toUpperCase()}|KEY-3`,
  'Task?identifier=Key-4',
  `Task?identifier=${SYS_B}|`,
  '|nosys-9'.replace(/^/, 'Task?identifier='),
  `Task?identifier=${SYS_A}|key-1,${SYS_B}|key-2,extra-8`,
  `Task?identifier=${SYS_B}|key-3`,
  'Task?identifier=|',
  'Task?_id=t7',
  'Task?_id=t7,t9,nope',
  'Task?status=requested',
  'Task?status=requested,accepted&based-on=CarePlan/cp1-1',
  'Task?status:not=requested&patient=Patient/p2',
  'Task?subject=Patient/p1',
  'Task?patient=Patient/p1&status=accepted',
  'Task?patient=p1',
  'Task?based-on=CarePlan/cp2-0',
  'Task?based-on=cp2-0',
  'Task?focus=Procedure/pr5',
  'Task?part-of=Task/t9',
  `Task?code=${CODES}|next-session`,
  'Task?code=next-session&status=completed',
  `Task?business-status=${CODES}|awaiting-approval&owner=Practitioner/dr1`,
  `Task?_tag=${TAGS}|tag1`,
  'Task?_lastUpdated=ge2027-01-10',
  'Task?_lastUpdated=lt2027-01-05T00:00:00Z',
  'Task?_lastUpdated=gt2027-01-03&_lastUpdated=le2027-01-08',
  'Task?_lastUpdated=2027-01-04',
  'Task?authored-on=2027-01-03',
  'Task?authored-on=ge2027-01-03&authored-on=lt2027-01-06',
  'Task?authored-on=sa2027-01-05',
  'Task?authored-on=eb2027-01-05',
  'Task?authored-on=ap2027-01-05',
  'Task?authored-on=ne2027-01-05',
  'Task?authored-on:missing=true',
  'Task?authored-on:missing=false&status=requested',
  'Task?status=requested&authored-on:missing=true',
  'Task?period=ge2027-02-05',
  'Task?_sort=_lastUpdated',
  'Task?status=requested&_sort=-_lastUpdated',
  'Task?_sort=authored-on&_count=5',
  'Task?_sort=-authored-on&_count=5&_offset=5',
  'Task?_sort=_id&_count=10&_offset=20',
  'Task?_count=7',
  'Task?_count=7&_offset=7',
  'Task?status=requested&_count=4&_offset=12',
  'Task?_count=0',
  'Task?_offset=100',
  'Task?based-on=CarePlan/cp0-0&_include=Task:based-on',
  'Task?subject:Patient.name=Fam3',
  'Procedure?based-on=CarePlan/cp1-1&status=completed',
  'Procedure?status=completed&_lastUpdated=ge2027-01-03&_sort=_lastUpdated&_count=100',
  'Procedure?date=ge2027-01-15',
  'Procedure?date=lt2027-01-14&subject=Patient/p0',
  'DetectedIssue?implicated=CarePlan/cp1-0',
  'Observation?subject=Patient/p1&code=http://loinc.org|29463-7&_sort=-date&_count=1',
  'Observation?subject=Patient/p2&code=http://loinc.org|29463-7,http://loinc.org|8480-6',
  'CarePlan?patient=Patient/p1&status=draft',
  'CarePlan?date=ge2027-01-02',
  'Provenance?target=Task/t3',
  'Patient?name=fam2',
  'Patient?deceased=false',
  'Patient?deceased=true',
  'Patient?death-date=2026-12-01',
  'Patient?email=p3@example.org',
  'Practitioner?_id=dr1',
];

/**
 * The SQLite store counts every match only when asked (`_total=accurate`, `_count=0`) or when the page itself tells
 * (no next page), as Medplum's server does; MemoryRepository always counts. Everything else is the same: entries,
 * order, links (a next link exactly when there is a next page).
 */
function expectSameAnswer(query: string, actual: Bundle, expected: Bundle): void {
  // A search sorted by _lastUpdated pages by cursor here, as on Medplum's server (search-paging.ts), where
  // MemoryRepository's server pages by offset: the same entries, a next link where it has one, no previous.
  const cursorNext = actual.link?.find((l) => l.relation === 'next' && l.url.includes('_cursor='));
  if (cursorNext || /[?&]_cursor=/.test(query)) {
    const links = (b: Bundle) => (b.link ?? []).filter((l) => l.relation !== 'self').map((l) => l.relation);
    expect(links(actual)).toEqual(links(expected).filter((relation) => relation !== 'previous'));
    actual = { ...actual, link: undefined };
    expected = { ...expected, link: undefined };
  }
  if (actual.total === undefined && expected.total !== undefined) {
    expect(query).not.toMatch(/_total=|_count=0(&|$)/);
    const { total, ...uncounted } = expected;
    expect(total).toBeGreaterThan(0);
    expect(actual).toEqual(uncounted);
  } else expect(actual).toEqual(expected);
}

/** The same query, asking for the total. */
const counted = (query: string) => `${query}${query.includes('?') ? '&' : '?'}_total=accurate`;

/** A search over HTTP, the server's base URL replaced so that two servers' answers compare. */
async function getSearch(sandbox: FhirSandbox, pathAndQuery: string): Promise<{ status: number; body: Bundle }> {
  const res = await fetch(`${sandbox.baseUrl}/${pathAndQuery}`);
  const text = (await res.text()).split(sandbox.baseUrl).join('{base}');
  return { status: res.status, body: JSON.parse(text) as Bundle };
}

/** The ids a search reaches by following its next links, page after page. */
async function walkNextLinks(sandbox: FhirSandbox, first: string): Promise<string[]> {
  const ids: string[] = [];
  let url: string | undefined = `${sandbox.baseUrl}/${first}`;
  while (url) {
    const bundle = (await (await fetch(url)).json()) as Bundle;
    ids.push(...(bundle.entry ?? []).map((e: BundleEntry) => e.resource!.id!));
    url = bundle.link?.find((l) => l.relation === 'next')?.url;
  }
  return ids;
}

/**
 * MemoryRepository with the page size Medplum's server gives a search (20 unless `_count` says otherwise, at most
 * 1,000), as the SQLite store does: the comparisons are about which resources match and in what order.
 */
class MedplumPagedMemoryRepository extends MemoryRepository {
  override search<T extends Resource>(searchRequest: SearchRequest<T>): Promise<Bundle<WithId<T>>> {
    return super.search(withMedplumPageSize(searchRequest));
  }
}

/** MemoryRepository's server and the SQLite store's, seeded with the same resources (ids, versions, times kept). */
async function seededPair(resources: Resource[]): Promise<{ memory: FhirSandbox; sqlite: FhirSandbox }> {
  const memoryRepo = new MedplumPagedMemoryRepository();
  const memory = await startFhirSandbox({ repository: memoryRepo });
  const sqlite = await startFhirSandbox({ dataDir: ':memory:' });
  for (const repo of [memoryRepo, sqlite.repo as SqliteRepository])
    await repo.withSeeding(async () => {
      for (const r of resources) await repo.createResource(r);
    });
  return { memory, sqlite };
}

beforeAll(() => indexFhirDefinitions());

describe('SqliteRepository answers as MemoryRepository does', () => {
  let memory: FhirSandbox;
  let sqlite: FhirSandbox;
  beforeAll(async () => {
    ({ memory, sqlite } = await seededPair(dataSet()));
  });
  afterAll(async () => {
    await memory.close();
    await sqlite.close();
  });

  const get = getSearch;

  it.each(QUERIES)('%s', async (query) => {
    const [expected, actual] = [await get(memory, query), await get(sqlite, query)];
    expect(actual.status).toBe(expected.status);
    expectSameAnswer(query, actual.body, expected.body);
  });

  it.each(QUERIES.map(counted))('%s', async (query) => {
    const [expected, actual] = [await get(memory, query), await get(sqlite, query)];
    expect(actual.status).toBe(expected.status);
    // Totals on both sides (asked for); a `_lastUpdated` sort pages by cursor here, as without the total.
    expect(actual.body.total).toBe(expected.body.total);
    expectSameAnswer(query, actual.body, expected.body);
  });

  it('the queries are not vacuous: most of them match something', async () => {
    const totals = await Promise.all(QUERIES.map(async (q) => (await get(sqlite, counted(q))).body.total ?? 0));
    expect(totals.filter((t) => t > 0).length).toBeGreaterThan(QUERIES.length * 0.75);
  });

  it('following next links pages through the same resources in the same order', async () => {
    const walk = walkNextLinks;
    for (const query of ['Task?status=requested,accepted&_count=4', 'Task?_sort=-_lastUpdated&_count=9']) {
      const ids = await walk(sqlite, query);
      expect(ids).toEqual(await walk(memory, query));
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBeGreaterThan(9);
    }
  });

  it('after updates and deletes the index follows the resources', async () => {
    for (const sandbox of [memory, sqlite]) {
      const t = (await (await fetch(`${sandbox.baseUrl}/Task/t1`)).json()) as Task;
      const put = await fetch(`${sandbox.baseUrl}/Task/t1`, {
        method: 'PUT',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify({ ...t, status: 'cancelled', identifier: [{ system: SYS_A, value: 'renamed' }] }),
      });
      expect(put.status).toBe(200);
      expect((await fetch(`${sandbox.baseUrl}/Task/t2`, { method: 'DELETE' })).status).toBe(200);
    }
    for (const query of [
      `Task?identifier=${SYS_A}|key-1`,
      `Task?identifier=${SYS_A}|renamed`,
      'Task?status=cancelled',
      'Task?_id=t2',
      'Task?based-on=CarePlan/cp2-0',
    ]) {
      // Versions and timestamps of the new t1 differ between the stores; ids, order and totals must not.
      const summary = (b: Bundle) => ({ total: b.total, ids: b.entry?.map((e) => e.resource?.id), link: b.link });
      const [expected, actual] = [await get(memory, query), await get(sqlite, query)];
      expect(summary(actual.body)).toEqual(summary(expected.body));
    }
    expect((await get(sqlite, 'Task?status=cancelled')).body.total).toBe(1);
  });
});

/**
 * Over more matches than the store estimates (500), a date-sorted page walks the date index in order instead of
 * sorting the matches: the same answers as MemoryRepository's sort, with ties, resources without the value, filters,
 * and pages that start in one segment (with a value, without) and end in the other.
 */
/** A period of 1-4 days (by `i`) from `startMs`. */
function periodOf(startMs: number, i: number): Period {
  return { start: new Date(startMs).toISOString(), end: new Date(startMs + (1 + (i % 4)) * 86_400_000).toISOString() };
}

describe('date-sorted pages over many matches answer as MemoryRepository does', () => {
  const TASKS = 1300;
  let memory: FhirSandbox;
  let sqlite: FhirSandbox;
  beforeAll(async () => {
    const tasks = Array.from({ length: TASKS }, (_, i): Task => ({
      resourceType: 'Task',
      id: `t${i}`,
      // Shuffled against insertion order.
      meta: {
        versionId: `v${i}`,
        lastUpdated: new Date(Date.UTC(2027, 0, 1) + ((i * 7919) % TASKS) * 60_000).toISOString(),
      },
      status: i % 3 ? 'requested' : 'completed',
      intent: 'plan',
      for: { reference: `Patient/p${i % 40}` },
      // Every 10th without a value (after the others ascending, before them descending); 997 values for 1,170
      // Tasks, so some share one (ties keep insertion order).
      authoredOn:
        i % 10 === 9 ? undefined : new Date(Date.UTC(2027, 1, 1) + ((i * 104_729) % 997) * 3_600_000).toISOString(),
      // Periods of 1-4 days from distinct hours: a walk seeks to a lower bound less the widest (search-filters.ts).
      executionPeriod: i % 10 === 9 ? undefined : periodOf(Date.UTC(2027, 3, 1) + ((i * 7919) % TASKS) * 3_600_000, i),
    }));
    ({ memory, sqlite } = await seededPair(tasks));
  });
  afterAll(async () => {
    await memory.close();
    await sqlite.close();
  });

  const get = async (sandbox: FhirSandbox, pathAndQuery: string) => (await getSearch(sandbox, pathAndQuery)).body;

  it.each([
    'Task?_sort=authored-on&_count=50',
    'Task?_sort=-authored-on&_count=50',
    'Task?_sort=-authored-on&_count=50&_offset=100',
    'Task?_sort=authored-on&_count=50&_offset=1150',
    'Task?_sort=authored-on&_count=50&_offset=1250',
    'Task?_sort=-authored-on&_count=50&_offset=1280',
    'Task?_sort=authored-on&_count=50&_offset=5000',
    'Task?_sort=-authored-on&_count=0',
    'Task?status=requested&_sort=-authored-on&_count=30&_offset=40',
    'Task?status=requested&_sort=authored-on&_count=40&_offset=760',
    'Task?status=requested&_sort=_lastUpdated&_count=25&_offset=600',
    'Task?_sort=-_lastUpdated&_count=20',
    'Task?_lastUpdated=ge2027-01-01T12:00:00Z&_sort=-_lastUpdated&_count=20&_offset=10',
    // A walk of _lastUpdated seeks to its own bounds (each operator's), in both directions.
    'Task?_lastUpdated=gt2027-01-01T05:00:30Z&_sort=_lastUpdated&_count=30',
    'Task?_lastUpdated=ge2027-01-01T05:00:00Z&_sort=_lastUpdated&_count=30&_offset=500',
    'Task?_lastUpdated=lt2027-01-01T20:00:00Z&_sort=-_lastUpdated&_count=30',
    'Task?_lastUpdated=le2027-01-01T19:59:00Z&_sort=-_lastUpdated&_count=30&_offset=700',
    'Task?_lastUpdated=sa2027-01-01T03:00:00Z&_sort=_lastUpdated&_count=30',
    'Task?_lastUpdated=eb2027-01-01T21:00:00Z&_sort=-_lastUpdated&_count=30',
    'Task?_lastUpdated=2027-01-01&_sort=_lastUpdated&_count=30&_offset=600',
    'Task?_lastUpdated=ge2027-01-01T02:00:00Z&_lastUpdated=lt2027-01-01T20:00:00Z&_sort=_lastUpdated&_count=30&_offset=20',
    'Task?status=requested&_lastUpdated=gt2027-01-01T01:00:00Z&_sort=-_lastUpdated&_count=30&_offset=30',
    // By _id: the (type, id) index walked, or a patient's few Tasks sorted.
    'Task?_sort=_id&_count=50&_offset=600',
    'Task?_sort=-_id&_count=30',
    'Task?status=requested&_sort=_id&_count=25&_offset=300',
    'Task?patient=Patient/p3&_sort=-_id',
    'Task?patient=Patient/p3&_sort=-authored-on',
    'Task?patient=Patient/p3&status=requested&_sort=authored-on&_count=5&_offset=5',
    // A walk of another date parameter seeks to its own filter's bounds too, a lower one less its widest value.
    'Task?period=ge2027-04-20&_sort=period&_count=30',
    'Task?period=gt2027-04-20T05:00:00Z&_sort=period&_count=30&_offset=200',
    'Task?period=2027-04-20&_sort=-period&_count=30',
    'Task?period=le2027-05-01&_sort=-period&_count=30&_offset=100',
    'Task?period=sa2027-04-25&_sort=period&_count=30',
    'Task?authored-on=ge2027-02-20&_sort=authored-on&_count=30&_offset=50',
    'Task?authored-on=lt2027-02-20&_sort=-authored-on&_count=30',
    'Task?status=requested&authored-on=ge2027-02-10T00:00:00Z&authored-on=lt2027-03-01&_sort=authored-on&_count=40&_offset=20',
  ])('%s', async (query) => {
    const [expected, actual] = [await get(memory, query), await get(sqlite, query)];
    expectSameAnswer(query, actual, expected);
    const [expectedCounted, actualCounted] = [await get(memory, counted(query)), await get(sqlite, counted(query))];
    expectSameAnswer(counted(query), actualCounted, expectedCounted);
    expect(actualCounted.total).toBe(expectedCounted.total);
  });

  it('the walk is over many matches: the queries above reach past the estimate cap', async () => {
    expect((await get(sqlite, 'Task?status=requested&_count=0')).total).toBeGreaterThan(500);
    // And the ties are real: some authoredOn values are shared.
    const all = await get(sqlite, `Task?_sort=authored-on&_count=${TASKS}`);
    const values = all.entry!.map((e) => (e.resource as Task).authoredOn).filter(Boolean);
    expect(new Set(values).size).toBeLessThan(values.length);
  });

  it('following next links through a sorted walk gives every match once, in order', async () => {
    const walk = walkNextLinks;
    const query = 'Task?status=requested&_sort=-authored-on&_count=200';
    const ids = await walk(sqlite, query);
    expect(ids).toEqual(await walk(memory, query));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(TASKS - Math.ceil(TASKS / 3));
  });

  it('after resources gain, lose or drop the value, the sorted pages still answer as MemoryRepository does', async () => {
    const put = async (sandbox: FhirSandbox, id: string, change: (t: Task) => Task) => {
      const task = (await (await fetch(`${sandbox.baseUrl}/Task/${id}`)).json()) as Task;
      const res = await fetch(`${sandbox.baseUrl}/Task/${id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify(change(task)),
      });
      expect(res.status).toBe(200);
    };
    // The widest period is read (and kept) before t1's grows.
    expect(
      (await get(sqlite, 'Task?period=ge2027-04-20&_sort=period&_count=40')).entry!.map((e) => e.resource!.id),
    ).not.toContain('t1');
    for (const sandbox of [memory, sqlite]) {
      // t9 had no authoredOn: gains one; t0 loses its own; t19 (none) and t5 are deleted.
      await put(sandbox, 't9', (t) => ({ ...t, authoredOn: '2027-03-01T00:00:00.000Z' }));
      await put(sandbox, 't0', ({ authoredOn: _, ...t }) => t);
      await put(sandbox, 't1', (t) => ({
        ...t,
        executionPeriod: { start: '2027-03-01T00:00:00.000Z', end: '2027-06-01T00:00:00.000Z' },
      }));
      for (const id of ['t19', 't5'])
        expect((await fetch(`${sandbox.baseUrl}/Task/${id}`, { method: 'DELETE' })).status).toBe(200);
    }
    // Versions and timestamps of the updated Tasks differ between the stores; ids, order and links must not.
    const summary = (b: Bundle) => ({ ids: b.entry?.map((e) => e.resource?.id), link: b.link });
    for (const query of [
      'Task?_sort=-authored-on&_count=150',
      'Task?_sort=authored-on&_count=50&_offset=1150',
      'Task?status=requested&_sort=-authored-on&_count=30',
      'Task?_sort=-authored-on&_count=20&_offset=120',
      'Task?authored-on:missing=true&_count=200',
      'Task?authored-on:missing=false&status=requested&_count=30&_offset=700',
      // t1's period now spans three months from before the bound: found, as the widest span grew with the write.
      'Task?period=ge2027-04-20&_sort=period&_count=40',
      'Task?period=ge2027-05-20&_sort=-period&_count=40&_offset=10',
    ]) {
      const [expected, actual] = [await get(memory, query), await get(sqlite, query)];
      expect(summary(actual)).toEqual(summary(expected));
    }
    const newestFirst = (await get(sqlite, 'Task?_sort=-authored-on&_count=1300')).entry!.map((e) => e.resource!.id);
    expect(newestFirst[0]).toBe('t0'); // no value now: first descending
    expect(newestFirst).not.toContain('t19');
    expect(newestFirst.indexOf('t9')).toBeGreaterThanOrEqual(129); // a value now: after the 129 without
  });
});

describe("paging as Medplum's server pages: _offset up to its maximum, a _cursor for _lastUpdated past it", () => {
  const TASKS = 300;
  let memory: FhirSandbox;
  let sqlite: FhirSandbox;
  let capped: FhirSandbox;
  beforeAll(async () => {
    const tasks = Array.from({ length: TASKS }, (_, i): Task => ({
      resourceType: 'Task',
      id: `c${i}`,
      // The first 100 share one instant: a run longer than a page, which a cursor must get past.
      meta: {
        versionId: `v${i}`,
        lastUpdated: new Date(Date.UTC(2027, 0, 1) + (i < 100 ? 0 : ((i * 7919) % TASKS) * 1000)).toISOString(),
      },
      status: i % 3 ? 'requested' : 'completed',
      intent: 'plan',
    }));
    ({ memory, sqlite } = await seededPair(tasks));
    capped = await startFhirSandbox({ dataDir: ':memory:', maxSearchOffset: 50 });
    await (capped.repo as SqliteRepository).withSeeding(async () => {
      for (const t of tasks) await (capped.repo as SqliteRepository).createResource(t);
    });
  });
  afterAll(async () => {
    await memory.close();
    await sqlite.close();
    await capped.close();
  });

  it.each(['Task?_sort=_lastUpdated&_count=20', 'Task?status=requested&_sort=_lastUpdated&_count=25'])(
    '%s: following cursor links gives every match once, in the order offset pages give them',
    async (query) => {
      const links: string[] = [];
      let url: string | undefined = `${sqlite.baseUrl}/${query}`;
      const ids: string[] = [];
      while (url) {
        const bundle = (await (await fetch(url)).json()) as Bundle;
        ids.push(...(bundle.entry ?? []).map((e) => e.resource!.id!));
        url = bundle.link?.find((l) => l.relation === 'next')?.url;
        if (url) links.push(url);
      }
      expect(ids).toEqual(await walkNextLinks(memory, query));
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBeGreaterThan(150);
      expect(links.length).toBeGreaterThan(5);
      for (const link of links) expect(link).toMatch(/_cursor=2-\d+/);
      for (const link of links) expect(link).not.toMatch(/_offset=/);
    },
  );

  it('a search naming no _count gets a page of 20 and a next link, as from Medplum, in a batch too', async () => {
    // Before, the whole match set came back (all 300 Tasks): an answer no Medplum or HAPI server gives, so a caller
    // could lean on it unseen, and its cost grew with the store.
    const unpaged = await getSearch(sqlite, 'Task?status=requested');
    expect(unpaged.body.entry).toHaveLength(20);
    expect(unpaged.body.link?.find((l) => l.relation === 'next')?.url).toMatch(/_offset=20&_count=20/);
    expect(await walkNextLinks(sqlite, 'Task?status=requested')).toHaveLength(200);
    // Through a batch too (Medplum's server pages every search the same way, its repository's).
    const batch = (await (
      await fetch(sqlite.baseUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify({
          resourceType: 'Bundle',
          type: 'batch',
          entry: [{ request: { method: 'GET', url: 'Task?status=completed' } }],
        }),
      })
    ).json()) as Bundle;
    expect((batch.entry?.[0]?.resource as Bundle).entry).toHaveLength(20);
  });

  it('refuses an _offset past the maximum with 400, as Medplum does, and answers one at it', async () => {
    const deep = await getSearch(sqlite, 'Task?_count=10&_offset=10001');
    expect(deep.status).toBe(400);
    expect(JSON.stringify(deep.body)).toContain('Search offset exceeds maximum (got 10001, max 10000)');
    expect((await getSearch(sqlite, 'Task?_count=10&_offset=10000')).status).toBe(200);
    // The limit is the store's setting (FHIR_SANDBOX_MAX_SEARCH_OFFSET); a cursor goes past it.
    expect((await getSearch(capped, 'Task?_count=20&_offset=60')).status).toBe(400);
    expect((await getSearch(capped, 'Task?_count=20&_offset=40')).status).toBe(200);
    expect(await walkNextLinks(capped, 'Task?_sort=_lastUpdated&_count=20')).toEqual(
      await walkNextLinks(memory, 'Task?_sort=_lastUpdated&_count=20'),
    );
  });

  it('refuses a cursor with an offset, and a cursor it did not write, with 400', async () => {
    for (const query of [
      'Task?_sort=_lastUpdated&_count=20&_offset=20&_cursor=2-1798761600000',
      'Task?_sort=_lastUpdated&_count=20&_cursor=bogus',
      'Task?_sort=_lastUpdated&_count=20&_cursor=3-1798761600000',
    ]) {
      const answer = await getSearch(sqlite, query);
      expect(answer.status).toBe(400);
      expect(answer.body.resourceType).toBe('OperationOutcome');
    }
    // A page of nothing leads nowhere.
    const none = await getSearch(sqlite, 'Task?_sort=_lastUpdated&_count=0&_cursor=2-1798761600000');
    expect(none.status).toBe(200);
    expect(none.body.entry).toBeUndefined();
    expect(none.body.link?.map((l) => l.relation)).toEqual(['self']);
  });
});

describe('indexed searches read only what they match', () => {
  it('with 3,000 Tasks stored, the worker and EHR searches parse a handful of resources, not the store', async () => {
    const repo = new SqliteRepository(':memory:');
    try {
      await repo.withTransaction(async () => {
        for (let i = 0; i < 3000; i++) {
          await repo.createResource<Task>({
            resourceType: 'Task',
            status: i % 2 ? 'requested' : 'completed',
            intent: 'plan',
            identifier: [{ system: SYS_A, value: `key-${i}` }],
            basedOn: [{ reference: `CarePlan/cp-${Math.floor(i / 3)}` }],
            focus: { reference: `Procedure/pr-${i}` },
            for: { reference: `Patient/p-${Math.floor(i / 30)}` },
            authoredOn: new Date(Date.UTC(2027, 0, 1) + i * 60_000).toISOString(),
          });
        }
      });
      // Searched once (the first search of a parameter builds its index over every stored Task).
      await repo.indexParameters('Task');
      const parse = jest.spyOn(JSON, 'parse');
      const cases: [string, number][] = [
        [`Task?identifier=${SYS_A}|key-1234`, 1],
        ['Task?based-on=CarePlan/cp-500&status=requested,accepted', 1],
        ['Task?focus=Procedure/pr-77', 1],
        ['Task?patient=Patient/p-7&status=requested&_sort=-authored-on&_count=5', 5],
        ['Task?authored-on=ge2027-01-03T01:00:00Z&_count=10', 10],
        ['Task?_id=nope', 0],
        // Date-sorted pages over most of the store walk the date index: the page is parsed, not every match.
        ['Task?_sort=-_lastUpdated&_count=10', 10],
        ['Task?status=requested&_sort=authored-on&_count=20&_offset=500', 20],
        ['Task?_sort=-authored-on&_count=5', 5],
        ['Task?_sort=_id&_count=10', 10],
        // `:missing` on a date parameter reads its absent rows or its date rows, not every Task.
        ['Task?authored-on:missing=true', 0],
        ['Task?authored-on:missing=false&_count=5', 5],
      ];
      for (const [query, found] of cases) {
        parse.mockClear();
        const bundle = await repo.search(parseSearchRequest(query));
        expect(bundle.entry?.length ?? 0).toBe(found);
        // One parse per resource returned (plus those sorted): never one per stored Task.
        expect(parse.mock.calls.length).toBeLessThanOrEqual(Math.max(found, 15));
      }
      parse.mockRestore();
    } finally {
      repo.close();
    }
  });

  it('updates rewrite only changed index rows and leave exactly the rows a fresh write would', async () => {
    const repo = new SqliteRepository(':memory:');
    const fresh = new SqliteRepository(':memory:');
    try {
      // Every Task parameter indexed in both, as if each had been searched.
      await repo.indexParameters('Task');
      await fresh.indexParameters('Task');
      let task = await repo.createResource<Task>({
        resourceType: 'Task',
        status: 'requested',
        intent: 'plan',
        identifier: [{ system: SYS_A, value: 'k' }, { value: 'k' }],
        basedOn: [{ reference: 'CarePlan/a' }],
      });
      const versions: Partial<Task>[] = [
        { status: 'accepted', owner: { reference: 'Practitioner/1' } },
        { status: 'accepted', identifier: [{ value: 'k' }, { value: 'k' }], owner: undefined },
        { status: 'rejected', basedOn: [{ reference: 'CarePlan/b' }, { reference: 'CarePlan/a' }] },
        // A date gained and lost: its absent row goes and comes back.
        { authoredOn: '2027-01-02T10:00:00Z' },
        { authoredOn: undefined },
      ];
      for (const change of versions) {
        task = await repo.updateResource<Task>({ ...task, ...change });
        const { id: _id, meta: _meta, ...body } = task;
        fresh.clear();
        await fresh.createResource<Task>(body);
        expect(repo.stats().indexRows).toBe(fresh.stats().indexRows);
      }
      const found = await repo.search(parseSearchRequest('Task?identifier=k&based-on=CarePlan/b&status=rejected'));
      expect(found.entry?.map((e) => e.resource?.id)).toEqual([task.id]);
      expect((await repo.search(parseSearchRequest(`Task?identifier=${SYS_A}|k`))).total).toBe(0);
      expect((await repo.search(parseSearchRequest('Task?owner=Practitioner/1'))).total).toBe(0);
    } finally {
      repo.close();
      fresh.close();
    }
  });
});

/** A transaction Bundle whose second entry fails once the first has been written. */
function failingTransaction(key: string): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:6a3c1b6e-8b0e-4a57-9d5e-000000000001',
        resource: {
          resourceType: 'Task',
          status: 'requested',
          intent: 'plan',
          identifier: [{ system: SYS_A, value: key }],
        },
        request: { method: 'POST', url: 'Task' },
      },
      {
        // Two Tasks already carry this key: the conditional create is ambiguous, 412.
        fullUrl: 'urn:uuid:6a3c1b6e-8b0e-4a57-9d5e-000000000002',
        resource: { resourceType: 'Task', status: 'requested', intent: 'plan' },
        request: { method: 'POST', url: 'Task', ifNoneExist: `identifier=${SYS_A}|duplicated` },
      },
    ],
  };
}

/**
 * String and uri parameters (`Patient?name=`, the clinician page's patient search): Medplum's matcher compares them as
 * a substring of the lowercased values. The store answers from a trigram index of the same lowercased values, folding
 * nothing more (not `ſ` into `s`, nor `ς` into `σ`), so answers are MemoryRepository's; a value under three
 * characters is left to the matcher, whose unsorted page stops reading at its last match.
 */
const GIVEN = ['Anna', 'Ben', 'Carla', 'Zoë', 'Åsa'];
const FAMILY = ['Smith', "O'Brien", 'Annan', 'Bennett', 'Nguyễn', 'de la Cruz', 'Benn', 'Say "Cheese"'];

function people(count: number): Resource[] {
  const meta = (i: number) => ({
    versionId: `v${i}`,
    lastUpdated: new Date(Date.UTC(2027, 0, 1) + ((i * 7919) % count) * 60_000).toISOString(),
  });
  const out: Resource[] = Array.from({ length: count }, (_, i): Patient => ({
    resourceType: 'Patient',
    id: `n${i}`,
    meta: meta(i),
    name:
      i % 17 === 0
        ? undefined
        : [
            { given: [GIVEN[i % 5]], family: `${FAMILY[i % 8]}${i % 3 ? '' : ` ${i}`}` },
            ...(i % 4 === 0 ? [{ use: 'nickname' as const, text: `Nick ${i}` }] : []),
          ],
    address: i % 5 === 0 ? [{ city: i % 2 ? 'Annapolis' : 'Bern' }] : undefined,
  }));
  // Letters that FTS5's default case folding would take for others (ſ for s, ς for σ): the matcher does not.
  out.push(
    { resourceType: 'Patient', id: 'fold1', meta: meta(count + 4), name: [{ family: 'Oſwald' }] },
    { resourceType: 'Patient', id: 'fold2', meta: meta(count + 5), name: [{ family: 'ΣΟΦΟΣ' }] },
  );
  for (let i = 0; i < 4; i++)
    out.push({
      resourceType: 'PlanDefinition',
      id: `plan${i}`,
      meta: meta(count + i),
      status: 'active',
      url: `https://example.org/PlanDefinition/plan-${i}${i === 3 ? '-extended' : ''}`,
    });
  return out;
}

const STRING_QUERIES = [
  'Patient?name=anna',
  'Patient?name=ANNA',
  'Patient?name=smith&_count=10',
  'Patient?name=smith&_count=10&_offset=10',
  'Patient?name=smith&_count=10&_offset=25',
  'Patient?name=be&_count=10&_offset=75',
  "Patient?name=o'brien",
  'Patient?name=say%20%22cheese%22',
  'Patient?name=zoë',
  'Patient?name=nguyễn&_count=5',
  'Patient?name=%C3%A5sa&_count=5',
  'Patient?name=anna%20smith',
  'Patient?name=a%20smith',
  'Patient?name:contains=enn&_count=20',
  'Patient?name=be&_count=20',
  'Patient?name=anna,smith&_count=30',
  'Patient?name=an,smith&_count=30',
  'Patient?name:not=smith&_count=50',
  'Patient?name:missing=true',
  'Patient?family=benn&_count=15',
  'Patient?given=carla&name=smith',
  'Patient?given=carla&name=smith&_id=n2,n12,n27,n102',
  'Patient?address-city=annapolis&_count=10',
  'Patient?address=bern',
  'Patient?name=nick%201',
  'Patient?name=zzz',
  'Patient?name=oswald',
  'Patient?name=o%C5%BFwald',
  'Patient?name=%CE%BF%CF%86%CE%BF%CF%83',
  'Patient?name=%CE%BF%CF%86%CE%BF%CF%82',
  'Patient?name=%CF%83%CE%BF%CF%86',
  'Patient?name=smith&_sort=-_lastUpdated&_count=5',
  'Patient?name=smith&_sort=family&_count=5',
  'Patient?name=smith&_count=0',
  'PlanDefinition?url=https://example.org/PlanDefinition/plan-1',
  'PlanDefinition?url=plan-3-ext',
  'PlanDefinition?url=xample.org/PlanDefinition/plan',
];

describe('string and uri searches answer as MemoryRepository does, from a trigram index', () => {
  let memory: FhirSandbox;
  let sqlite: FhirSandbox;
  beforeAll(async () => {
    ({ memory, sqlite } = await seededPair(people(240)));
  });
  afterAll(async () => {
    await memory.close();
    await sqlite.close();
  });

  it.each(STRING_QUERIES)('%s', async (query) => {
    const [expected, actual] = [await getSearch(memory, query), await getSearch(sqlite, query)];
    expect(actual.status).toBe(expected.status);
    expectSameAnswer(query, actual.body, expected.body);
    const [expectedCounted, actualCounted] = [
      await getSearch(memory, counted(query)),
      await getSearch(sqlite, counted(query)),
    ];
    expect(actualCounted.body).toEqual(expectedCounted.body);
  });

  it('the queries are not vacuous: most match, some over several pages', async () => {
    const totals = await Promise.all(
      STRING_QUERIES.map(async (q) => (await getSearch(sqlite, counted(q))).body.total ?? 0),
    );
    expect(totals.filter((t) => t > 0).length).toBeGreaterThan(STRING_QUERIES.length * 0.75);
    expect((await getSearch(sqlite, counted('Patient?name=be'))).body.total).toBeGreaterThan(75);
  });

  it('following next links pages through the same patients in the same order', async () => {
    for (const query of ['Patient?name=smith&_count=7', 'Patient?name=be&_count=25', 'Patient?name=nn&_count=40']) {
      const ids = await walkNextLinks(sqlite, query);
      expect(ids).toEqual(await walkNextLinks(memory, query));
      expect(ids.length).toBeGreaterThan(25);
    }
  });

  it('after a rename, a name removed and a delete, the index follows the patients', async () => {
    for (const sandbox of [memory, sqlite]) {
      const put = async (patient: Patient) =>
        expect(
          (
            await fetch(`${sandbox.baseUrl}/Patient/${patient.id}`, {
              method: 'PUT',
              headers: { 'content-type': 'application/fhir+json' },
              body: JSON.stringify(patient),
            })
          ).status,
        ).toBe(200);
      const read = async (id: string) => (await (await fetch(`${sandbox.baseUrl}/Patient/${id}`)).json()) as Patient;
      await put({ ...(await read('n1')), name: [{ given: ['Renata'], family: 'Renamed' }] });
      await put({ ...(await read('n2')), name: undefined });
      expect((await fetch(`${sandbox.baseUrl}/Patient/n3`, { method: 'DELETE' })).status).toBe(200);
    }
    for (const query of [
      'Patient?name=renamed',
      'Patient?name=renata',
      'Patient?name=ben&_count=100',
      "Patient?name=o'brien&_count=100",
      'Patient?name=carla&_count=100',
      'Patient?name:missing=true',
    ]) {
      const summary = (b: Bundle) => ({ total: b.total, ids: b.entry?.map((e) => e.resource?.id), link: b.link });
      const [expected, actual] = [await getSearch(memory, counted(query)), await getSearch(sqlite, counted(query))];
      expect(summary(actual.body)).toEqual(summary(expected.body));
    }
    expect((await getSearch(sqlite, 'Patient?name=renamed')).body.entry?.map((e) => e.resource?.id)).toEqual(['n1']);
  });
});

describe("`:exact` on a string compares the whole value, as Medplum's and HAPI's servers do", () => {
  // Medplum's in-memory matcher (and MemoryRepository) take `:exact` for a substring, as they do every string search;
  // its Postgres server and HAPI compare the whole value, case and accents included.
  it('matches the value whole, case included, any of several; the trigram index still narrows', async () => {
    const repo = new SqliteRepository(':memory:');
    try {
      for (const family of ['Benn', 'Bennett', 'benn', 'Ben'])
        await repo.createResource<Patient>({ resourceType: 'Patient', name: [{ family }] });
      const families = async (query: string) =>
        ((await repo.search(parseSearchRequest(query))).entry ?? [])
          .map((e) => (e.resource as Patient).name![0].family)
          .sort();
      expect(await families('Patient?family=benn')).toEqual(['Benn', 'Bennett', 'benn']);
      expect(await families('Patient?family:exact=Benn')).toEqual(['Benn']);
      expect(await families('Patient?family:exact=Benn,Ben')).toEqual(['Ben', 'Benn']);
      expect(await families('Patient?family:exact=Be')).toEqual([]);
      expect(await families('Patient?family:exact=benn&_count=1')).toEqual(['benn']);
    } finally {
      repo.close();
    }
  });

  it('finds a Subscription by its exact criteria, escaped commas and all, and not one its criteria begin', async () => {
    const repo = new SqliteRepository(':memory:');
    try {
      const subscription = (criteria: string) =>
        repo.createResource({
          resourceType: 'Subscription',
          status: 'active',
          reason: 'test',
          criteria,
          channel: { type: 'rest-hook', endpoint: 'https://example.org/hook' },
        });
      await subscription('MedicationRequest?status=cancelled,stopped');
      await subscription('MedicationRequest');
      const found = async (query: string) =>
        ((await repo.search(parseSearchRequest(query))).entry ?? []).map(
          (e) => (e.resource as { criteria: string }).criteria,
        );
      expect(await found('Subscription?criteria:exact=MedicationRequest')).toEqual(['MedicationRequest']);
      expect(
        await found(
          `Subscription?criteria:exact=${encodeURIComponent('MedicationRequest?status=cancelled\\,stopped')}`,
        ),
      ).toEqual(['MedicationRequest?status=cancelled,stopped']);
      expect((await found('Subscription?criteria=MedicationRequest')).length).toBe(2);
    } finally {
      repo.close();
    }
  });
});

describe('string searches read what they match, not every patient', () => {
  it('with 3,000 patients stored, a name search parses its matches (and a page of a common one, its page)', async () => {
    const repo = new SqliteRepository(':memory:');
    try {
      await repo.withSeeding(() =>
        repo.withTransaction(async () => {
          for (const resource of people(3000)) await repo.createResource(resource);
        }),
      );
      // The first search of a parameter builds its index over the stored patients.
      await repo.indexParameters('Patient');
      const parse = jest.spyOn(JSON, 'parse');
      const cases: [string, number, number][] = [
        // [query, found, most parsed]
        ['Patient?name=smith%202832', 1, 3],
        ['Patient?name=nick%202996', 1, 3],
        ['Patient?name=qqqq', 0, 0],
        ['Patient?name=anna&_count=20', 20, 21],
        ['Patient?name=smith&_count=20&_offset=40', 20, 61],
        ['Patient?family=nguy&given=zo%C3%AB&_count=10', 10, 11],
        // Exact from the index: a total is counted and a date sort ordered there, not by parsing the matches.
        ['Patient?name=anna&_count=20&_total=accurate', 20, 20],
        ['Patient?name=smith&_sort=-_lastUpdated&_count=5', 5, 5],
        // Under three characters the index cannot narrow: the page still stops at its last match.
        ['Patient?name=be&_count=20', 20, 200],
      ];
      for (const [query, found, mostParsed] of cases) {
        parse.mockClear();
        const bundle = await repo.search(parseSearchRequest(query));
        expect({ query, found: bundle.entry?.length ?? 0 }).toEqual({ query, found });
        expect(parse.mock.calls.length).toBeLessThanOrEqual(mostParsed);
      }
      parse.mockRestore();
    } finally {
      repo.close();
    }
  });
});

/** A store's internals the query plan tests read: how a search's candidates are selected, and the connection. */
interface SearchInternals {
  searcher: {
    indexedFilter(type: string, filter: unknown): unknown;
    candidateQuery(type: string, indexed: unknown[]): { select(columns: string): string; params: unknown[] };
  };
  db: { prepare(sql: string): { all(...params: unknown[]): unknown[] } };
}

/** SQLite's plan for selecting a search's candidates (every filter of the query indexed). */
function candidatePlan(repo: SqliteRepository, query: string): string[] {
  const internals = repo as unknown as SearchInternals;
  const { resourceType, filters } = parseSearchRequest(query);
  const indexed = (filters ?? []).map((f) => internals.searcher.indexedFilter(resourceType, f));
  const candidates = internals.searcher.candidateQuery(resourceType, indexed);
  return (
    internals.db.prepare(`EXPLAIN QUERY PLAN ${candidates.select('r.seq')}`).all(...candidates.params) as {
      detail: string;
    }[]
  ).map((r) => r.detail);
}

describe('query plans', () => {
  let repo: SqliteRepository;
  beforeEach(() => {
    repo = new SqliteRepository();
  });
  afterEach(() => repo.close());

  it("several OR'd token values are looked up in the value index, not by walking every row of the parameter", () => {
    // The follow-up worker's `Task?identifier=k1,k2,k3` read every Task key (62 ms at 100k Tasks, 0.1 ms now).
    const plan = candidatePlan(repo, `Task?identifier=${SYS_A}|a,${SYS_A}|b,c`);
    expect(plan.some((d) => /token_value_system \(p=\? AND value=\?\)/.test(d))).toBe(true);
  });

  it('a name filter is driven by the trigram index, and checked per candidate by a seek, not a full-text query each', () => {
    // Checked per candidate as `x.rowid IN (full-text query)`, the query ran again for every row: 150 ms a page over
    // 50k Patients, 0.8 ms as a seek.
    expect(candidatePlan(repo, 'Patient?name=smith')).toContain('SCAN t VIRTUAL TABLE INDEX 0:M1');
    // `_id` drives (it names one Patient); the name is a seek in the trigram lists for that candidate alone.
    const checked = candidatePlan(repo, 'Patient?_id=p1&name=smith');
    expect(checked).toContain('SCAN t VIRTUAL TABLE INDEX 0:=M1');
    expect(checked.some((d) => d.includes('LIST SUBQUERY'))).toBe(false);
  });

  it('every LIMIT a search binds is an expression (`LIMIT +?`): SQLite re-plans a bare `LIMIT ?` at every bind', async () => {
    // A bare bound LIMIT made SQLite parse and plan the statement again at each execution (3-7 us a statement,
    // 7% of the store thread's time in follow-up events); `+?` keeps it prepared. Nothing here can time it, so this
    // checks the statements the searches prepare: a page, an estimate, a type's size, a date walk, an `_id` walk.
    await repo.withTransaction(async () => {
      for (let i = 0; i < 520; i++)
        await repo.createResource<Task>({
          resourceType: 'Task',
          status: 'requested',
          intent: 'plan',
          priority: 'routine',
        });
    });
    const db = (repo as unknown as { db: DatabaseSync }).db;
    const prepare = db.prepare.bind(db);
    const prepared: string[] = [];
    jest.spyOn(db, 'prepare').mockImplementation((sql: string) => {
      prepared.push(sql);
      return prepare(sql);
    });
    for (const query of [
      'Task?status=requested&_count=20',
      'Task?status=requested&priority=routine&_count=20&_offset=20',
      'Task?_count=20',
      'Task?_sort=-_lastUpdated&_count=20',
      'Task?status=requested&_sort=_id&_count=20',
    ])
      expect((await repo.search(parseSearchRequest(query))).entry).toHaveLength(20);
    const limited = prepared.filter((sql) => /\bLIMIT\b/.test(sql));
    expect(limited.length).toBeGreaterThanOrEqual(5);
    expect(limited.filter((sql) => /\bLIMIT \?/.test(sql))).toEqual([]);
  });

  it('a bare id is looked up in the tail index, which holds only the rows of parameters that match a bare id', async () => {
    const plan = candidatePlan(repo, 'Task?patient=p1');
    expect(plan.some((d) => /ref_tail_single \(p=\? AND tail=\?\)/.test(d))).toBe(true);
    await repo.createResource<Task>({
      resourceType: 'Task',
      status: 'requested',
      intent: 'plan',
      for: { reference: 'Patient/p1' },
      basedOn: [{ reference: 'CarePlan/cp1' }],
    });
    // `patient` has one target type; `subject` and `based-on` have several, so `based-on=cp1` matches nothing.
    const db = (repo as unknown as SearchInternals).db;
    expect(db.prepare('SELECT p, tail FROM ref WHERE tail IS NOT NULL').all()).toEqual([
      { p: 'Task:patient', tail: 'p1' },
    ]);
  });
});

describe("a date parameter's widest value (maxSpanMs)", () => {
  it('is read from the index once, widened by later writes, and unbounded by an open-ended value', async () => {
    const repo = new SqliteRepository(':memory:');
    try {
      const task = (executionPeriod: Task['executionPeriod']) =>
        repo.createResource<Task>({ resourceType: 'Task', status: 'requested', intent: 'plan', executionPeriod });
      await task({ start: '2027-01-01T00:00:00.000Z', end: '2027-01-03T00:00:00.000Z' });
      await task({ start: '2027-01-05T10:00:00.000Z', end: '2027-01-05T10:00:00.000Z' });
      await repo.indexParameters('Task', ['period']);
      // Two days, and a millisecond for julianday's rounding.
      expect(repo.maxSpanMs('Task:period')).toBe(2 * 86_400_000 + 1);
      // A day-precision end ('2027-02-10' ends at 23:59:59.999).
      await task({ start: '2027-02-01', end: '2027-02-10' });
      expect(repo.maxSpanMs('Task:period')).toBe(10 * 86_400_000 - 1);
      await task({ start: '2027-03-01T00:00:00.000Z', end: '2027-03-02T00:00:00.000Z' });
      expect(repo.maxSpanMs('Task:period')).toBe(10 * 86_400_000 - 1);
      await task({ start: '2027-03-01T00:00:00.000Z' });
      expect(repo.maxSpanMs('Task:period')).toBe(Infinity);
      // Read afresh from the index (a reopened store), the same.
      const reread = repo as unknown as { spans: Map<string, number> };
      reread.spans.clear();
      expect(repo.maxSpanMs('Task:period')).toBe(Infinity);
      expect(repo.maxSpanMs('Task:authored-on')).toBe(0);
      // Every lastUpdated the store writes is a full instant: a cursor page seeks to within a millisecond of it.
      await repo.indexParameters('Task', ['_lastUpdated']);
      expect(repo.maxSpanMs('Task:_lastUpdated')).toBe(1);
    } finally {
      repo.close();
    }
  });
});

describe('server-assigned ids', () => {
  it('are time-ordered (UUIDv7): a new resource lands at the end of the id indexes, not on a random page', async () => {
    const repo = new SqliteRepository();
    try {
      const ids: string[] = [];
      for (let i = 0; i < 50; i++)
        ids.push((await repo.createResource<Task>({ resourceType: 'Task', status: 'requested', intent: 'plan' })).id);
      expect(ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id))).toBe(
        true,
      );
      expect([...ids].sort()).toEqual(ids);
    } finally {
      repo.close();
    }
  });
});

describe('transactions are all or nothing', () => {
  const post = (sandbox: FhirSandbox, bundle: Bundle) =>
    fetch(sandbox.baseUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify(bundle),
    });
  const count = async (sandbox: FhirSandbox, key: string) =>
    ((await (await fetch(`${sandbox.baseUrl}/Task?identifier=${SYS_A}|${key}`)).json()) as Bundle).total;

  it('a transaction failing midway leaves nothing (MemoryRepository keeps the first write)', async () => {
    const memory = await startFhirSandbox({ repository: new MemoryRepository() });
    const sqlite = await startFhirSandbox({ dataDir: ':memory:' });
    try {
      const duplicated = {
        resourceType: 'Task',
        status: 'requested',
        intent: 'plan',
        identifier: [{ system: SYS_A, value: 'duplicated' }],
      };
      for (const sandbox of [memory, sqlite])
        for (let i = 0; i < 2; i++)
          await post(sandbox, {
            resourceType: 'Bundle',
            type: 'batch',
            entry: [{ resource: duplicated as Task, request: { method: 'POST', url: 'Task' } }],
          });
      const stored = () => {
        const { resources, versions, indexRows } = (sqlite.repo as SqliteRepository).stats();
        return { resources, versions, indexRows };
      };
      // Indexed now, not by the transaction's conditional create (an index built by a search stays).
      await (sqlite.repo as SqliteRepository).indexParameters('Task');
      const before = stored();
      for (const sandbox of [memory, sqlite])
        expect((await post(sandbox, failingTransaction('half'))).status).toBe(412);
      // The baseline shows the test is not vacuous: the first entry was processed before the second failed.
      expect(await count(memory, 'half')).toBe(1);
      expect(await count(sqlite, 'half')).toBe(0);
      expect(stored()).toEqual(before);
      // And the same Bundle without the failing entry commits.
      const ok = failingTransaction('whole');
      ok.entry!.pop();
      expect((await post(sqlite, ok)).status).toBe(200);
      expect(await count(sqlite, 'whole')).toBe(1);
    } finally {
      await memory.close();
      await sqlite.close();
    }
  });

  it('withTransaction rolls back every write when its callback throws, and others never see them', async () => {
    const repo = new SqliteRepository(':memory:');
    try {
      let crash!: () => void;
      const crashed = new Promise<void>((resolve) => (crash = resolve));
      let wrote!: () => void;
      const bothWritten = new Promise<void>((resolve) => (wrote = resolve));
      const transaction = repo.withTransaction(async (tx) => {
        await tx.createResource<Task>({ resourceType: 'Task', status: 'requested', intent: 'plan' });
        await tx.createResource<Task>({ resourceType: 'Task', status: 'requested', intent: 'plan' });
        wrote();
        await crashed;
        throw new Error('crash in the middle');
      });
      await bothWritten;
      // A search from outside waits for the transaction, and then sees nothing of it.
      let settled = false;
      const outside = repo.search(parseSearchRequest('Task')).then((b) => {
        settled = true;
        return b.total;
      });
      // The store is synchronous SQLite behind an async lock: one turn of the event loop runs every pending
      // continuation, so a search that did not wait for the lock would have settled by now.
      await new Promise((resolve) => setImmediate(resolve));
      expect(settled).toBe(false);
      crash();
      await expect(transaction).rejects.toThrow('crash in the middle');
      expect(await outside).toBe(0);
      expect(repo.stats()).toMatchObject({ resources: 0, versions: 0, indexRows: 0 });
    } finally {
      repo.close();
    }
  });
});

describe('group commit', () => {
  const task = (key: string): Task => ({
    resourceType: 'Task',
    status: 'requested',
    intent: 'plan',
    identifier: [{ system: SYS_A, value: key }],
  });

  it('writes queued behind one another are committed together, each answered with what it wrote', async () => {
    const repo = new SqliteRepository();
    try {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => repo.createResource(task(`g-${i}`))));
      expect(repo.stats()).toMatchObject({ resources: 20, groupCommits: 1 });
      for (const created of answers) expect(await repo.readResource('Task', created.id)).toEqual(created);
    } finally {
      repo.close();
    }
  });

  it('a write that fails in a group rolls back alone; the others land', async () => {
    const repo = new SqliteRepository();
    try {
      const existing = await repo.createResource(task('kept'));
      const results = await Promise.allSettled([
        repo.createResource(task('before')),
        repo.updateResource({ ...existing, status: 'cancelled' }, { ifMatch: 'not-the-version' }),
        repo.withTransaction(async (tx) => {
          await tx.createResource(task('in-failed-transaction'));
          throw new Error('the transaction fails after a write');
        }),
        repo.createResource(task('after')),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
      const keys = (await repo.search(parseSearchRequest('Task'))).entry?.map(
        (e) => (e.resource as Task).identifier?.[0].value,
      );
      expect(keys).toEqual(['kept', 'before', 'after']);
      expect((await repo.readResource<Task>('Task', existing.id)).status).toBe('requested');
    } finally {
      repo.close();
    }
  });

  it('one client alone commits each write at once (nothing to group with)', async () => {
    const repo = new SqliteRepository();
    try {
      for (let i = 0; i < 3; i++) await repo.createResource(task(`alone-${i}`));
      expect(repo.stats().groupCommits).toBe(3);
    } finally {
      repo.close();
    }
  });
});

describe('durability', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-fhir-store-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('commits reach the disk as configured: synchronous=NORMAL by default, FULL (fsync per commit) when asked', () => {
    for (const [asked, told] of [
      [undefined, 'normal'],
      ['full', 'full'],
      ['normal', 'normal'],
    ] as const) {
      const repo = new SqliteRepository(dir, { sync: asked });
      expect(repo.sync()).toBe(told);
      repo.close();
    }
    const memory = new SqliteRepository(':memory:', { sync: 'full' });
    expect(memory.sync()).toBe('memory');
    memory.close();
  });

  it('resources, versions and the index survive closing and reopening the data directory', async () => {
    const first = new SqliteRepository(dir);
    const created = await first.createResource<Task>({
      resourceType: 'Task',
      status: 'requested',
      intent: 'plan',
      identifier: [{ system: SYS_A, value: 'durable' }],
      basedOn: [{ reference: 'CarePlan/cp-durable' }],
    });
    const updated = await first.updateResource(
      { ...created, status: 'accepted' },
      { ifMatch: created.meta!.versionId },
    );
    first.close();

    const second = new SqliteRepository(dir);
    try {
      expect(await second.readResource('Task', created.id)).toEqual(updated);
      const history = await second.readHistory('Task', created.id);
      expect(history.entry?.map((e) => e.resource?.meta?.versionId)).toEqual([
        updated.meta!.versionId,
        created.meta!.versionId,
      ]);
      expect(await second.readVersion('Task', created.id, created.meta!.versionId!)).toEqual(created);
      const byKey = await second.search(parseSearchRequest(`Task?identifier=${SYS_A}|durable&status=accepted`));
      expect(byKey.entry?.map((e) => e.resource?.id)).toEqual([created.id]);
      const byPlan = await second.search(parseSearchRequest('Task?based-on=CarePlan/cp-durable'));
      expect(byPlan.total).toBe(1);
    } finally {
      second.close();
    }
  });

  it('the string index survives reopening, and writes after it keep it', async () => {
    const first = new SqliteRepository(dir);
    const ana = await first.createResource<Patient>({ resourceType: 'Patient', name: [{ family: 'Durablename' }] });
    const names = async (repo: SqliteRepository, name: string) =>
      ((await repo.search(parseSearchRequest(`Patient?name=${name}`))).entry ?? []).map((e) => e.resource?.id);
    expect(await names(first, 'durablen')).toEqual([ana.id]);
    first.close();

    const second = new SqliteRepository(dir);
    try {
      expect(await names(second, 'rablena')).toEqual([ana.id]);
      const bo = await second.createResource<Patient>({ resourceType: 'Patient', name: [{ family: 'Durablename' }] });
      await second.updateResource<Patient>({ ...ana, name: [{ family: 'Renamedafter' }] });
      expect(await names(second, 'durablename')).toEqual([bo.id]);
      expect(await names(second, 'renamedaft')).toEqual([ana.id]);
    } finally {
      second.close();
    }
  });

  it('a parameter is indexed from its first search on: what was stored before is found, later writes are indexed, and the choice survives reopening', async () => {
    const built: string[] = [];
    const task = (i: number): Task => ({
      resourceType: 'Task',
      status: i % 2 ? 'requested' : 'completed',
      intent: 'plan',
      owner: { reference: `Practitioner/dr${i % 3}` },
      basedOn: [{ reference: `CarePlan/cp${i}` }],
    });
    const first = new SqliteRepository(dir, { onIndexBuilt: (b) => built.push(`${b.parameter} ${b.resources}`) });
    for (let i = 0; i < 6; i++) await first.createResource(task(i));
    // Nothing searched yet: a write indexes nothing.
    expect(first.stats().indexRows).toBe(0);
    const owners = async (repo: SqliteRepository, owner: string) =>
      (await repo.search(parseSearchRequest(`Task?owner=${owner}&status=requested`))).total;
    expect(await owners(first, 'Practitioner/dr1')).toBe(1); // tasks 1 (requested) and 4 (completed) have dr1
    expect(built).toEqual(['Task:owner 6', 'Task:status 6']);
    // Each of the 6 Tasks has one owner row and one status row; based-on (never searched) has none.
    expect(first.stats().indexRows).toBe(12);
    const later = await first.createResource(task(7)); // owner dr1, requested
    expect(first.stats().indexRows).toBe(14);
    first.close();

    built.length = 0;
    const second = new SqliteRepository(dir, { onIndexBuilt: (b) => built.push(b.parameter) });
    try {
      const found = await second.search(parseSearchRequest('Task?owner=Practitioner/dr1&status=requested'));
      expect(found.entry?.map((e) => e.resource?.id).sort()).toHaveLength(2);
      expect(found.entry?.some((e) => e.resource?.id === later.id)).toBe(true);
      expect(built).toEqual([]); // indexed before the restart: not built again
      await second.updateResource({ ...later, status: 'completed' });
      expect(await owners(second, 'Practitioner/dr1')).toBe(1);
      expect(second.stats().indexRows).toBe(14);
    } finally {
      second.close();
    }
  });

  it('an index built inside a transaction that fails is taken back with it, and built again on the next search', async () => {
    const repo = new SqliteRepository(dir);
    try {
      await repo.createResource<Task>({ resourceType: 'Task', status: 'requested', intent: 'plan' });
      await expect(
        repo.withTransaction(async () => {
          expect((await repo.search(parseSearchRequest('Task?status=requested'))).total).toBe(1);
          throw new Error('the rest of the transaction failed');
        }),
      ).rejects.toThrow('failed');
      expect(repo.stats().indexRows).toBe(0);
      // Not believed indexed any more: the next search builds the rows again, so later writes are found too.
      expect((await repo.search(parseSearchRequest('Task?status=requested'))).total).toBe(1);
      await repo.createResource<Task>({ resourceType: 'Task', status: 'requested', intent: 'plan' });
      expect((await repo.search(parseSearchRequest('Task?status=requested'))).total).toBe(2);
    } finally {
      repo.close();
    }
  });

  /** 50 Tasks written (committed to the WAL); the size the database file had before. */
  async function fiftyTasks(repo: SqliteRepository): Promise<{ dbFile: string; before: number }> {
    const dbFile = path.join(dir, DB_FILE);
    const before = fs.statSync(dbFile).size;
    for (let i = 0; i < 50; i++)
      await repo.createResource<Task>({
        resourceType: 'Task',
        status: 'requested',
        intent: 'plan',
        identifier: [{ system: SYS_A, value: `wal-${i}` }],
      });
    return { dbFile, before };
  }

  /** Whether the database file grows past `before` (a checkpoint copied the WAL into it) within 5 s. */
  async function checkpointed(dbFile: string, before: number): Promise<boolean> {
    const deadline = Date.now() + 5000;
    while (fs.statSync(dbFile).size === before && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    return fs.statSync(dbFile).size > before;
  }

  it('copies the WAL into the database file once the store is idle, not inside the writes', async () => {
    const repo = new SqliteRepository(dir);
    try {
      const { dbFile, before } = await fiftyTasks(repo);
      // Committed (in the WAL), not yet copied: no write paid for a checkpoint.
      expect(fs.statSync(dbFile).size).toBe(before);
      expect(await checkpointed(dbFile, before)).toBe(true);
    } finally {
      repo.close();
    }
  });

  it('a deleted resource answers its history, as Medplum’s server does: what a deletion notification names is read there', async () => {
    const repo = new SqliteRepository(dir);
    try {
      const v1 = await repo.createResource<Task>({ resourceType: 'Task', status: 'draft', intent: 'plan' });
      const v2 = await repo.updateResource<Task>({ ...v1, status: 'ready' });
      await repo.deleteResource('Task', v1.id);
      await expect(repo.readResource('Task', v1.id)).rejects.toThrow('Not found');
      expect((await repo.readHistory<Task>('Task', v1.id)).entry?.map((e) => e.resource)).toEqual([v2, v1]);
      await expect(repo.readHistory('Task', 'never-written')).rejects.toThrow('Not found');
    } finally {
      repo.close();
    }
  });

  it('a version is stored once: the current one in the resource table, the ones it superseded in the history', async () => {
    const rowsIn = (table: string) => {
      const db = new DatabaseSync(path.join(dir, DB_FILE), { readOnly: true });
      try {
        return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const first = new SqliteRepository(dir);
    const v1 = await first.createResource<Task>({ resourceType: 'Task', status: 'draft', intent: 'plan' });
    const v2 = await first.updateResource<Task>({ ...v1, status: 'ready' });
    const v3 = await first.updateResource<Task>({ ...v2, status: 'completed' });
    const other = await first.createResource<Task>({ resourceType: 'Task', status: 'draft', intent: 'plan' });
    await first.deleteResource('Task', other.id);
    const versions = async (repo: SqliteRepository) =>
      (await repo.readHistory<Task>('Task', v1.id)).entry?.map((e) => e.resource?.meta?.versionId);
    expect(await versions(first)).toEqual([v3, v2, v1].map((v) => v.meta!.versionId));
    for (const v of [v1, v2, v3]) expect(await first.readVersion('Task', v1.id, v.meta!.versionId!)).toEqual(v);
    first.close();
    // Two superseded versions of the first Task, the deleted one's last version; no copy of a current version.
    expect(rowsIn('history')).toBe(3);

    // A store from before: every current version had a copy in the history. Opened, it keeps one of each.
    const old = new DatabaseSync(path.join(dir, DB_FILE));
    old.exec(
      "INSERT INTO history (type, id, version_id, content) SELECT type, id, version_id, content FROM resource; DELETE FROM meta WHERE key = 'history'",
    );
    old.close();
    expect(rowsIn('history')).toBe(4);
    const second = new SqliteRepository(dir);
    try {
      expect(await versions(second)).toEqual([v3, v2, v1].map((v) => v.meta!.versionId));
    } finally {
      second.close();
    }
    expect(rowsIn('history')).toBe(3);
  });

  it('reads keep the store busy: no checkpoint while they come, one once they stop', async () => {
    const repo = new SqliteRepository(dir);
    try {
      const { dbFile, before } = await fiftyTasks(repo);
      // A read every 20 ms for 0.8 s, the last write's 250 ms long gone: never a quiet spell of 250 ms.
      const readsUntil = Date.now() + 800;
      while (Date.now() < readsUntil) {
        await repo.search(parseSearchRequest('Task?status=requested&_count=1'));
        expect(fs.statSync(dbFile).size).toBe(before);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await checkpointed(dbFile, before)).toBe(true);
    } finally {
      repo.close();
    }
  });

  it("reports its file and WAL sizes, commits and indexed parameters (the operators' gauges)", async () => {
    const repo = new SqliteRepository(dir);
    try {
      const before = repo.storageStats();
      expect(before.databaseBytes).toBeGreaterThan(0);
      await repo.createResource<Patient>({ resourceType: 'Patient', gender: 'female' });
      await repo.search(parseSearchRequest('Patient', { gender: 'female' }));
      const after = repo.storageStats();
      // The write is in the WAL until the store idles (checkpointWhenIdle).
      expect(after.walBytes).toBeGreaterThan(0);
      expect(after.groupCommits).toBeGreaterThan(before.groupCommits);
      expect(after.indexedParameters).toBe(before.indexedParameters + 1);
    } finally {
      repo.close();
    }
  });

  it('one process per data directory: a second opener is refused at once, saying why; after close it opens', () => {
    const first = new SqliteRepository(dir);
    try {
      expect(() => new SqliteRepository(dir)).toThrow(/in use by another process/);
    } finally {
      first.close();
    }
    const again = new SqliteRepository(dir);
    again.close();
  });

  /**
   * A real crash: `body` runs in a separate node process with `repo` open on the test's data directory, and must
   * end that process by SIGKILL; resolves with what it printed.
   */
  async function runUntilKilled(body: string): Promise<string> {
    const script = `
      import * as fs from 'node:fs';
      import { createRequire } from 'node:module';
      // CommonJS through the tests' TypeScript hook (ts-register.cjs): the store's relative imports have no
      // extension, and the definitions must be indexed into the same @medplum/core the store uses.
      const require = createRequire(import.meta.url);
      require('@kc/fhir-definitions').indexFhirDefinitions();
      const { SqliteRepository } = require(${JSON.stringify(path.join(__dirname, 'sqlite-repository.ts'))});
      const repo = new SqliteRepository(${JSON.stringify(dir)});
      ${body}
      await new Promise(() => {});
    `;
    const scriptFile = path.join(__dirname, `.crash-${process.pid}.mjs`);
    fs.writeFileSync(scriptFile, script);
    try {
      return await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--no-warnings', '--require', TS_REGISTER, scriptFile], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('error', reject);
        // 'close', not 'exit': 'exit' can come before the child's output was all read.
        child.on('close', (code, sig) =>
          sig === 'SIGKILL' ? resolve(stdout) : reject(new Error(`child exited ${code ?? sig}: ${stderr}`)),
        );
      });
    } finally {
      fs.rmSync(scriptFile, { force: true });
    }
  }

  it('a write is answered only once committed: killed right after answers of a group commit, each answered write is there', async () => {
    // 40 creates queued together (one group); the child prints each id as its answer arrives and dies by SIGKILL
    // at the tenth. An answer given before the commit would name a Task the reopened store does not have.
    const printed = await runUntilKilled(`
      let answered = 0;
      for (let i = 0; i < 40; i++)
        repo.createResource({ resourceType: 'Task', status: 'requested', intent: 'plan' }).then((task) => {
          fs.writeSync(1, task.id + '\\n');
          if (++answered === 10) process.kill(process.pid, 'SIGKILL');
        });
    `);
    const answered = printed.trim().split('\n');
    expect(answered).toHaveLength(10);
    const repo = new SqliteRepository(dir);
    try {
      for (const id of answered) expect((await repo.readResource<Task>('Task', id)).id).toBe(id);
    } finally {
      repo.close();
    }
  });

  it('a process killed in the middle of a transaction leaves none of it, and keeps what was committed', async () => {
    await runUntilKilled(`
      const task = (key) => ({ resourceType: 'Task', status: 'requested', intent: 'plan',
        identifier: [{ system: '${SYS_A}', value: key }] });
      await repo.createResource(task('committed'));
      await repo.withTransaction(async (tx) => {
        for (let i = 0; i < 50; i++) await tx.createResource(task('in-flight-' + i));
        process.kill(process.pid, 'SIGKILL');
        await new Promise(() => {});
      });
    `);
    const repo = new SqliteRepository(dir);
    try {
      const all = await repo.search(parseSearchRequest('Task'));
      expect(all.entry?.map((e) => (e.resource as Task).identifier?.[0].value)).toEqual(['committed']);
      expect(repo.stats()).toMatchObject({ resources: 1, versions: 1 });
    } finally {
      repo.close();
    }
  });
});
