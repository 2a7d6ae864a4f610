import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Operator } from '@medplum/core';
import type { Patient, Task } from '@medplum/fhirtypes';
import { indexFhirDefinitions } from '@kc/fhir-definitions';
import { DB_FILE, SqliteRepository } from './sqlite-repository';
import { checkStoreFile } from './store-backup';

/**
 * A backup of the store while it keeps serving: the copy is one checked file holding every write answered before
 * the backup began, and it opens as a store of its own (what a restore does).
 */
let dir: string;
beforeAll(() => indexFhirDefinitions());
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-store-backup-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

// 300 of them fill more pages than one backup step copies (1,024), so the copy is made in steps.
const task = (i: number): Task => ({
  resourceType: 'Task',
  status: 'draft',
  intent: 'proposal',
  identifier: [{ system: 'urn:test', value: `t${i}` }],
  note: [{ text: `${i} `.repeat(8000) }],
});

it('copies a durable store while writes go on: every write answered before it, one checked file, opens as a store', async () => {
  const repo = new SqliteRepository(path.join(dir, 'data'));
  try {
    const before = await Promise.all(Array.from({ length: 300 }, (_, i) => repo.createResource(task(i))));
    const updated = await repo.updateResource({ ...before[0], status: 'ready' });
    const progress: [number, number][] = [];
    const file = path.join(dir, 'backup.sqlite');
    // Writes going on before, during and after the copy (SQLite refuses to copy a connection's open write
    // transaction): each lands whole on one side of it, and none fails.
    let copying = true;
    const writer = (async () => {
      let written = 0;
      while (copying || written < 20) await repo.createResource(task(1000 + written++));
      return written;
    })();
    // A write still waiting for its group's commit when the backup is asked for.
    await repo.readResource('Task', before[1].id);
    const alsoWritten = repo.createResource(task(2000));
    for (let turn = 0; turn < 20; turn++) await Promise.resolve(); // written, its commit not yet made
    const backup = await repo.backupTo(file, (copied, total) => progress.push([copied, total]));
    await alsoWritten;
    copying = false;
    expect(await writer).toBeGreaterThanOrEqual(20);
    expect(backup).toMatchObject({ file, bytes: fs.statSync(file).size });
    expect(backup.resources).toBeGreaterThanOrEqual(300);
    // Reported step by step, to the whole database.
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.map(([copied]) => copied)).toEqual([...progress.map(([copied]) => copied)].sort((a, b) => a - b));
    expect(progress.at(-1)![0]).toBe(progress.at(-1)![1]);
    // One self-contained file: no WAL beside it, no partial file left.
    expect(fs.readdirSync(dir).sort()).toEqual(['backup.sqlite', 'data']);

    const restoredDir = path.join(dir, 'restored');
    fs.mkdirSync(restoredDir);
    fs.copyFileSync(file, path.join(restoredDir, DB_FILE));
    const restored = new SqliteRepository(restoredDir);
    try {
      for (const t of before) expect((await restored.readResource<Task>('Task', t.id)).id).toBe(t.id);
      expect(await restored.readResource<Task>('Task', updated.id)).toMatchObject({
        status: 'ready',
        meta: { versionId: updated.meta!.versionId },
      });
      // Its index answers searches, and it takes writes.
      const found = await restored.search<Task>({
        resourceType: 'Task',
        filters: [{ code: 'identifier', operator: Operator.EQUALS, value: 'urn:test|t7' }],
      });
      expect(found.entry?.map((e) => e.resource!.id)).toEqual([before[7].id]);
      const total = backup.resources;
      expect(restored.stats().resources).toBe(total);
      await restored.createResource<Patient>({ resourceType: 'Patient' });
    } finally {
      restored.close();
    }
  } finally {
    repo.close();
  }
});

it('a backup that cannot be written leaves no file and the store serving', async () => {
  const repo = new SqliteRepository(':memory:');
  try {
    await repo.createResource(task(1));
    await expect(repo.backupTo(path.join(dir, 'missing', 'backup.sqlite'))).rejects.toThrow();
    expect(fs.readdirSync(dir)).toEqual([]);
    expect((await repo.createResource(task(2))).id).toBeDefined();
  } finally {
    repo.close();
  }
});

it('the store serves again while the copy is checked: a read sent once the last page is copied is answered first', async () => {
  const repo = new SqliteRepository(path.join(dir, 'data'));
  try {
    const written = await Promise.all(Array.from({ length: 300 }, (_, i) => repo.createResource(task(i))));
    const order: string[] = [];
    let read: Promise<void> | undefined;
    const backup = repo
      .backupTo(path.join(dir, 'backup.sqlite'), (copied, total) => {
        if (copied === total && !read)
          read = repo.readResource('Task', written[5].id).then(() => void order.push('read answered'));
      })
      .then(() => void order.push('backup checked and named'));
    await backup;
    await read;
    expect(order).toEqual(['read answered', 'backup checked and named']);
  } finally {
    repo.close();
  }
});

it('a damaged copy is refused, saying why', async () => {
  const file = path.join(dir, 'damaged.sqlite');
  const repo = new SqliteRepository(':memory:');
  try {
    await Promise.all(Array.from({ length: 50 }, (_, i) => repo.createResource(task(i))));
    await repo.backupTo(file);
  } finally {
    repo.close();
  }
  expect(await checkStoreFile(file)).toBe(50);
  // Overwrite pages in the middle of the file (a torn copy, a bad disk).
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.alloc(16 * 4096, 0xa5), 0, 16 * 4096, 8 * 4096);
  fs.closeSync(fd);
  await expect(checkStoreFile(file)).rejects.toThrow(/damaged\.sqlite is not a whole store: .+/);
  fs.writeFileSync(file, 'not a database at all');
  await expect(checkStoreFile(file)).rejects.toThrow(/is not a whole store: .*not a database/);
});
