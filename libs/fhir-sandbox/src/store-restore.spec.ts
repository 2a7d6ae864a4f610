import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Patient } from '@medplum/fhirtypes';
import { indexFhirDefinitions } from '@kc/fhir-definitions';
import { DB_FILE, IN_MEMORY, SqliteRepository } from './sqlite-repository';
import { restoreStore, RestoreRefused } from './store-restore';

/** Restoring a backup: only into a store no process has open, only a whole store, the replaced one kept. */
let dir: string;
let dataDir: string;
beforeAll(() => indexFhirDefinitions());
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-store-restore-'));
  dataDir = path.join(dir, 'data');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const patient = (family: string): Patient => ({ resourceType: 'Patient', name: [{ family }] });
const RESTORED_AT = new Date('2026-12-02T18:30:00.000Z');

/** A store in dataDir holding `before`, a backup of it, then `after` written too; the store is closed. */
async function storeWithBackup(): Promise<{ backup: string; before: Patient; after: Patient }> {
  const repo = new SqliteRepository(dataDir);
  try {
    const before = await repo.createResource(patient('Before'));
    const backup = path.join(dir, 'backup.sqlite');
    await repo.backupTo(backup);
    const after = await repo.createResource(patient('After'));
    return { backup, before, after };
  } finally {
    repo.close();
  }
}

it('puts the backup in place and keeps the store it replaced, whole, beside it', async () => {
  const { backup, before, after } = await storeWithBackup();
  const restored = await restoreStore(dataDir, backup, RESTORED_AT);
  expect(restored).toEqual({
    dataFile: path.join(dataDir, DB_FILE),
    resources: 1,
    replaced: path.join(dataDir, `${DB_FILE}.replaced-2026-12-02T18-30-00-000Z`),
  });
  expect(fs.readdirSync(dataDir).sort()).toEqual([DB_FILE, path.basename(restored.replaced!)]);
  const repo = new SqliteRepository(dataDir);
  try {
    expect((await repo.readResource<Patient>('Patient', before.id!)).name?.[0].family).toBe('Before');
    await expect(repo.readResource('Patient', after.id!)).rejects.toThrow(/Not found/);
    await repo.createResource(patient('Written after the restore'));
  } finally {
    repo.close();
  }
  // The replaced store is a store of its own, with the write made after the backup.
  const keptDir = path.join(dir, 'kept');
  fs.mkdirSync(keptDir);
  fs.copyFileSync(restored.replaced!, path.join(keptDir, DB_FILE));
  const kept = new SqliteRepository(keptDir);
  try {
    expect((await kept.readResource<Patient>('Patient', after.id!)).name?.[0].family).toBe('After');
  } finally {
    kept.close();
  }
});

it('restores into a data directory that holds no store yet', async () => {
  const { backup } = await storeWithBackup();
  const fresh = path.join(dir, 'fresh', 'data');
  expect(await restoreStore(fresh, backup)).toEqual({ dataFile: path.join(fresh, DB_FILE), resources: 1 });
  expect(fs.readdirSync(fresh)).toEqual([DB_FILE]);
});

it('refuses while a process has the store open, changing nothing', async () => {
  const { backup, after } = await storeWithBackup();
  const running = new SqliteRepository(dataDir);
  try {
    const filesBefore = fs.readdirSync(dataDir).sort();
    await expect(restoreStore(dataDir, backup)).rejects.toThrow(
      new RegExp(`${dataDir} is in use by a running service .*: stop it, then restore`),
    );
    await expect(restoreStore(dataDir, backup)).rejects.toBeInstanceOf(RestoreRefused);
    expect(fs.readdirSync(dataDir).sort()).toEqual(filesBefore);
    expect((await running.readResource<Patient>('Patient', after.id!)).id).toBe(after.id);
  } finally {
    running.close();
  }
});

it('refuses a damaged backup, a missing one and an in-memory store, leaving the store as it was', async () => {
  const { backup, after } = await storeWithBackup();
  const fd = fs.openSync(backup, 'r+');
  fs.writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, 4096);
  fs.closeSync(fd);
  await expect(restoreStore(dataDir, backup)).rejects.toThrow(/the backup was not restored: .* is not a whole store/);
  await expect(restoreStore(dataDir, path.join(dir, 'nothing.sqlite'))).rejects.toThrow(/no backup at/);
  await expect(restoreStore(IN_MEMORY, backup)).rejects.toThrow(/in memory/);
  expect(fs.readdirSync(dataDir).filter((f) => f.includes('restoring') || f.includes('replaced'))).toEqual([]);
  const repo = new SqliteRepository(dataDir);
  try {
    expect((await repo.readResource<Patient>('Patient', after.id!)).id).toBe(after.id);
  } finally {
    repo.close();
  }
});
