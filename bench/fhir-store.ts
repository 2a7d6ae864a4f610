import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { parseSearchRequest } from '@medplum/core';
import { MemoryRepository, type FhirRepository } from '@medplum/fhir-router';
import type { Bundle, Patient, Task } from '@medplum/fhirtypes';
import { indexFhirDefinitions } from '@kc/fhir-definitions';
import { DB_FILE, SqliteRepository, startFhirSandbox } from '@kc/fhir-sandbox';
import { fmt, header, row, runBench, runConcurrently } from './bench-support';

/**
 * The embedded FHIR store (SQLite, indexed, durable) against the one it replaced (Medplum's MemoryRepository),
 * in the same process:
 *  - search cost at 1k, 20k and 100k stored Tasks (and half as many named Patients) for the worker's identifier and
 *    based-on searches, EHRs' sorted and paged ones and the clinician page's patient name search, with the ratio to
 *    the cost at 1k (an indexed search should not grow with the store) and to MemoryRepository;
 *  - raw Task creates and transaction Bundles over HTTP (4 in flight), empty and with 100k Tasks stored;
 *  - RSS and file size with 100k Tasks stored.
 * `BENCH_QUICK=1` (or `-- quick`) runs small sizes.
 */
const QUICK = process.env.BENCH_QUICK === '1' || process.argv.includes('quick');
const SIZES = QUICK ? [500, 2_000, 5_000] : [1_000, 20_000, 100_000];
const MEMORY_SIZES = SIZES.slice(0, 2);
const SEARCHES = QUICK ? 100 : 300;
const MEMORY_SEARCHES = QUICK ? 10 : 15;
const HTTP_WRITES = QUICK ? 300 : 2_000;
const HTTP_TRANSACTIONS = QUICK ? 100 : 500;
const KEY_SYSTEM = 'https://ketamine-careplans.example/fhir/task-key';
const TASKS_PER_PLAN = 4;

/** A follow-up Task as the worker writes them: keyed, based on a CarePlan, focused on the infusion. */
function task(i: number): Task {
  const plan = Math.floor(i / TASKS_PER_PLAN);
  return {
    resourceType: 'Task',
    identifier: [{ system: KEY_SYSTEM, value: `CarePlan/cp-${plan}:Procedure/pr-${i}:post-infusion-check` }],
    status: i % 3 ? 'requested' : 'accepted',
    intent: 'plan',
    businessStatus: {
      coding: [{ system: 'https://ketamine-careplans.example/fhir/CodeSystem/kc', code: 'awaiting-approval' }],
    },
    code: {
      coding: [{ system: 'https://ketamine-careplans.example/fhir/CodeSystem/kc', code: 'post-infusion-check' }],
    },
    basedOn: [{ reference: `CarePlan/cp-${plan}` }],
    focus: { reference: `Procedure/pr-${i}` },
    for: { reference: `Patient/p-${Math.floor(plan / 2)}` },
    authoredOn: new Date(Date.UTC(2027, 0, 1) + i * 60_000).toISOString(),
    restriction: { period: { start: '2027-01-04T10:00:00.000Z', end: '2027-01-11T10:00:00.000Z' } },
    description: 'Post-infusion check: vitals, pain score, side effects',
  };
}

const SYLLABLES = ['ba', 'ko', 'ri', 'su', 'te', 'ma', 'ni', 'lo', 'pe', 'da', 'gu', 'ha', 'ji', 've', 'zo', 'ca'];
const GIVEN_NAMES = ['Anna', 'Ben', 'Carla', 'Dmitri', 'Eve'];

/** A family name of five syllables, different for each patient (so a search for one finds that patient alone). */
function familyName(patient: number): string {
  let name = '';
  for (let n = (patient * 7919) % 16 ** 5, k = 0; k < 5; k++, n = Math.floor(n / 16)) name += SYLLABLES[n % 16];
  return name[0].toUpperCase() + name.slice(1);
}

/** A patient for every two Tasks: a fifth are called Anna. */
function patient(i: number): Patient {
  return { resourceType: 'Patient', name: [{ given: [GIVEN_NAMES[i % 5]], family: familyName(i) }] };
}

async function fill(repo: FhirRepository, from: number, to: number): Promise<void> {
  for (let start = from; start < to; start += 1000) {
    await repo.withTransaction(
      async () => {
        for (let i = start; i < Math.min(to, start + 1000); i++) {
          await repo.createResource(task(i));
          if (i % 2 === 0) await repo.createResource(patient(i / 2));
        }
      },
      { resourceTypes: ['Task', 'Patient'] },
    );
  }
}

/** A full collection before reading RSS (run-all starts benches without --expose-gc). */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
/** RSS and JS heap after a full collection (RSS alone hides what a repository holds: freed heap is reused). */
const memoryAfterGc = () => {
  gc();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
};

/**
 * Mean ms per search over `n` searches spread across the stored Tasks (after a first, unmeasured pass that warms
 * the caches); checks each finds what it should.
 */
async function meanSearchMs(
  repo: FhirRepository,
  stored: number,
  n: number,
  query: (i: number) => string,
  expect: number,
): Promise<number> {
  let total = 0;
  for (let k = -n; k < n; k++) {
    const i = Math.floor(((((k + n) % n) + 0.5) / n) * stored);
    const request = parseSearchRequest(query(i));
    const start = performance.now();
    const bundle = await repo.search(request);
    if (k >= 0) total += performance.now() - start;
    if ((bundle.entry?.length ?? 0) !== expect)
      throw new Error(`${query(i)} found ${bundle.entry?.length}, not ${expect}`);
  }
  return total / n;
}

const SEARCH_KINDS: { label: string; query: (i: number) => string; expect: number }[] = [
  {
    label: 'identifier (conditional-create key)',
    query: (i) => `Task?identifier=${KEY_SYSTEM}|${task(i).identifier![0].value}&_count=2`,
    expect: 1,
  },
  {
    label: 'based-on (tasks of a care plan)',
    query: (i) => `Task?based-on=CarePlan/cp-${Math.floor(i / TASKS_PER_PLAN)}&_count=100`,
    expect: TASKS_PER_PLAN,
  },
  {
    label: 'based-on + status (open tasks of a plan)',
    query: (i) => `Task?based-on=CarePlan/cp-${Math.floor(i / TASKS_PER_PLAN)}&status=requested,accepted&_count=100`,
    expect: TASKS_PER_PLAN,
  },
  {
    label: "a patient's newest (patient + _sort=-authored-on, one page)",
    // The patient before Task i's: all 8 of their Tasks are stored whatever the store's size.
    query: (i) =>
      `Task?patient=Patient/p-${Math.max(0, Math.floor(i / TASKS_PER_PLAN / 2) - 1)}&_sort=-authored-on&_count=5`,
    expect: 5,
  },
  {
    label: 'newest first (_sort=-_lastUpdated, one page of 10)',
    query: () => 'Task?_sort=-_lastUpdated&_count=10',
    expect: 10,
  },
  {
    label: 'open, by date (status + _sort=authored-on, page 3 of 20)',
    query: () => 'Task?status=requested&_sort=authored-on&_count=20&_offset=40',
    expect: 20,
  },
  {
    label: 'open, a page of 20 (status, no sort)',
    query: () => 'Task?status=requested&_count=20',
    expect: 20,
  },
  {
    label: "a patient by family name (the clinician page's search)",
    query: (i) => `Patient?name=${familyName(Math.floor(i / 2))}&_count=20`,
    expect: 1,
  },
  {
    label: 'patients by 3 letters a fifth share (name=ann, a page of 20)',
    query: () => 'Patient?name=ann&_count=20',
    expect: 20,
  },
  {
    label: 'patients by 2 letters (too short to index; a page of 20)',
    query: () => 'Patient?name=be&_count=20',
    expect: 20,
  },
];

/** Task creates and 2-entry conditional-create transactions over HTTP, 4 in flight, against a repository. */
async function httpWrites(repo: FhirRepository, tag: string): Promise<{ creates: number; transactions: number }> {
  const sandbox = await startFhirSandbox({ repository: repo });
  try {
    const post = async (pathname: string, body: unknown) => {
      const res = await fetch(`${sandbox.baseUrl}${pathname}`, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify(body),
      });
      if (res.status >= 300) throw new Error(`${pathname} answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    };
    const creates = await runConcurrently(HTTP_WRITES, 4, (i) =>
      post('/Task', { resourceType: 'Task', status: 'requested', intent: 'plan', note: [{ text: `${tag}-${i}` }] }),
    );
    const transactions = await runConcurrently(HTTP_TRANSACTIONS, 4, (i) => {
      const bundle: Bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [0, 1].map((k) => {
          const value = `${tag}:tx-${i}:${k}`;
          return {
            fullUrl: `urn:uuid:00000000-0000-4000-8000-${String(i * 2 + k).padStart(12, '0')}`,
            resource: {
              resourceType: 'Task',
              status: 'requested',
              intent: 'plan',
              identifier: [{ system: KEY_SYSTEM, value }],
            },
            request: { method: 'POST', url: 'Task', ifNoneExist: `identifier=${KEY_SYSTEM}|${value}` },
          };
        }),
      };
      return post('', bundle);
    });
    return {
      creates: HTTP_WRITES / (creates.wallMs / 1000),
      transactions: HTTP_TRANSACTIONS / (transactions.wallMs / 1000),
    };
  } finally {
    await sandbox.close(); // the HTTP server only: a repository passed in outlives the sandbox
  }
}

const mb = (bytes: number) => `${fmt(bytes / 1024 / 1024, 0)} MB`;

async function main(): Promise<void> {
  header(`Embedded FHIR store: SQLite (indexed, durable) vs Medplum MemoryRepository${QUICK ? ' (quick sizes)' : ''}`);
  indexFhirDefinitions();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-bench-store-'));
  try {
    // Writes on empty stores first, so the stored Tasks of the search part do not weigh on them.
    const emptyMemory = await httpWrites(new MemoryRepository(), 'memory');
    const writesRepo = new SqliteRepository(path.join(dir, 'writes'));
    const emptySqlite = await httpWrites(writesRepo, 'empty');
    writesRepo.close();

    const rssStart = memoryAfterGc();
    const sqlite = new SqliteRepository(path.join(dir, 'store'));
    const results: Record<string, Record<number, number>> = {};
    let stored = 0;
    let fillMs = 0;
    for (const size of SIZES) {
      const t = performance.now();
      await fill(sqlite, stored, size);
      fillMs += performance.now() - t;
      stored = size;
      for (const kind of SEARCH_KINDS)
        (results[`sqlite ${kind.label}`] ??= {})[size] = await meanSearchMs(
          sqlite,
          size,
          SEARCHES,
          kind.query,
          kind.expect,
        );
    }
    const rssFull = memoryAfterGc();
    const fileBytes = ['', '-wal'].reduce((sum, suffix) => {
      const file = path.join(dir, 'store', DB_FILE + suffix);
      return sum + (fs.existsSync(file) ? fs.statSync(file).size : 0);
    }, 0);
    const fullSqlite = await httpWrites(sqlite, 'full');
    // An online backup holds every other operation back while it copies: a read sent with it waits that long.
    const backupStarted = performance.now();
    const [backup, heldMs] = await Promise.all([
      sqlite.backupTo(path.join(dir, 'backup.sqlite')),
      sqlite.search({ resourceType: 'Task', count: 1 }).then(() => performance.now() - backupStarted),
    ]);
    sqlite.close();

    const rssBeforeMemory = memoryAfterGc();
    const memory = new MemoryRepository();
    stored = 0;
    for (const size of MEMORY_SIZES) {
      await fill(memory, stored, size);
      stored = size;
      for (const kind of SEARCH_KINDS)
        (results[`memory ${kind.label}`] ??= {})[size] = await meanSearchMs(
          memory,
          size,
          MEMORY_SEARCHES,
          kind.query,
          kind.expect,
        );
    }
    // MemoryRepository holds every resource and every version on the heap.
    await fill(memory, stored, SIZES.at(-1)!);
    const rssMemory = memoryAfterGc();
    memory.clear();

    const [small, mid, large] = SIZES;
    process.stdout.write(`\n  search, mean per search (repository call, no HTTP)\n`);
    for (const kind of SEARCH_KINDS) {
      const s = results[`sqlite ${kind.label}`];
      const m = results[`memory ${kind.label}`];
      row(
        `${kind.label}: SQLite`,
        `${fmt(s[small], 3)} / ${fmt(s[mid], 3)} / ${fmt(s[large], 3)} ms at ${small} / ${mid} / ${large} Tasks` +
          ` (x${fmt(s[mid] / s[small], 2)}, x${fmt(s[large] / s[small], 2)} of ${small})`,
      );
      row(
        `${kind.label}: MemoryRepository`,
        `${fmt(m[small], 2)} / ${fmt(m[mid], 2)} ms at ${small} / ${mid} Tasks (x${fmt(m[mid] / m[small], 1)} of ${small})`,
      );
      row(`  SQLite faster than MemoryRepository at ${mid} Tasks`, `${fmt(m[mid] / s[mid], 0)}x`);
    }
    process.stdout.write(`\n  writes over HTTP, 4 in flight\n`);
    row('Task creates: MemoryRepository (empty)', `${fmt(emptyMemory.creates, 0)} writes/s`);
    row(
      'Task creates: SQLite (empty)',
      `${fmt(emptySqlite.creates, 0)} writes/s (x${fmt(emptySqlite.creates / emptyMemory.creates, 2)})`,
    );
    row(
      `Task creates: SQLite with ${large} Tasks stored`,
      `${fmt(fullSqlite.creates, 0)} writes/s (x${fmt(fullSqlite.creates / emptySqlite.creates, 2)} of empty)`,
    );
    row('2-entry conditional transactions: MemoryRepository', `${fmt(emptyMemory.transactions, 0)} Bundles/s`);
    row(
      '2-entry conditional transactions: SQLite (empty)',
      `${fmt(emptySqlite.transactions, 0)} Bundles/s (x${fmt(emptySqlite.transactions / emptyMemory.transactions, 2)})`,
    );
    row(
      `2-entry conditional transactions: SQLite, ${large} stored`,
      `${fmt(fullSqlite.transactions, 0)} Bundles/s (x${fmt(fullSqlite.transactions / emptySqlite.transactions, 2)} of empty)`,
    );
    row(`bulk load (1,000 creates per transaction, no HTTP)`, `${fmt(SIZES.at(-1)! / (fillMs / 1000), 0)} Tasks/s`);
    process.stdout.write(`\n  memory and disk\n`);
    const memoryRow = (label: string, before: { rss: number; heapUsed: number }, after: typeof before) =>
      row(
        label,
        `RSS ${mb(after.rss)} (${mb(before.rss)} before), JS heap ${mb(after.heapUsed)} (+${mb(after.heapUsed - before.heapUsed)})`,
      );
    memoryRow(`${large} Tasks stored: SQLite`, rssStart, rssFull);
    memoryRow(`${large} Tasks stored: MemoryRepository`, rssBeforeMemory, rssMemory);
    row(`database file with ${large} Tasks (+ WAL)`, mb(fileBytes));
    row(
      `online backup with ${large} Tasks (checked copy, one file)`,
      `${mb(backup.bytes)} in ${fmt(backup.durationMs, 0)} ms; a read sent with it waited ${fmt(heldMs, 0)} ms`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

runBench(main);
