import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DB_FILE, IN_MEMORY } from './sqlite-repository';
import { checkStoreFile, PARTIAL_SUFFIX } from './store-backup';

/** A restore done: the store now in place, what it holds, and where the one it replaced was kept. */
export interface StoreRestore {
  dataFile: string;
  resources: number;
  /** The store that was there before, renamed beside it; absent when the data directory held none. */
  replaced?: string;
}

/** Why a restore was refused, for the operator (nothing was changed). */
export class RestoreRefused extends Error {}

/** SQLite's files beside a database: its write-ahead log and the log's index. */
const SIDE_FILES = ['-wal', '-shm'];

/**
 * Puts the backup `backupFile` in place as the embedded store of `dataDir`. Refuses, changing nothing, when a process
 * has that store open (the service holds SQLite's exclusive lock while it runs: restoring under it would lose the
 * writes it goes on making) and when the backup is not a whole store. The backup is copied into the data directory
 * and checked there (what is checked is what is used), the store it replaces is kept beside it as
 * `fhir.sqlite.replaced-<time>` (its write-ahead log merged in first, any file SQLite left beside it moved with it), and only then is the copy named `fhir.sqlite`.
 * The next start opens it as any store (re-indexing it when an older build wrote it).
 */
export async function restoreStore(dataDir: string, backupFile: string, now = new Date()): Promise<StoreRestore> {
  if (dataDir === IN_MEMORY)
    throw new RestoreRefused('the store is in memory (FHIR_DATA_DIR=:memory:): nothing to restore into');
  if (!fs.existsSync(backupFile)) throw new RestoreRefused(`no backup at ${backupFile}`);
  fs.mkdirSync(dataDir, { recursive: true });
  const dataFile = path.join(dataDir, DB_FILE);
  const incoming = `${dataFile}.restoring${PARTIAL_SUFFIX}`;
  const existing = fs.existsSync(dataFile);
  if (existing) settleUnused(dataFile);
  fs.copyFileSync(backupFile, incoming);
  let resources: number;
  try {
    resources = await checkStoreFile(incoming);
  } catch (err) {
    fs.rmSync(incoming, { force: true });
    throw new RestoreRefused(`the backup was not restored: ${(err as Error).message}`);
  }
  let replaced: string | undefined;
  if (existing) {
    replaced = `${dataFile}.replaced-${now.toISOString().replace(/[:.]/g, '-')}`;
    for (const suffix of ['', ...SIDE_FILES])
      if (fs.existsSync(`${dataFile}${suffix}`)) fs.renameSync(`${dataFile}${suffix}`, `${replaced}${suffix}`);
  }
  fs.renameSync(incoming, dataFile);
  syncDirectory(dataDir);
  return { dataFile, resources, replaced };
}

/**
 * Proves no process has the store open (taking the lock a running service holds), and merges its write-ahead log
 * into the file, so the file alone is the whole store and can be moved aside. A service started between this and
 * the rename would be replaced under it: the operator stops the service first (README).
 */
function settleUnused(dataFile: string): void {
  const db = new DatabaseSync(dataFile);
  try {
    db.exec('PRAGMA busy_timeout = 0');
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    db.exec('BEGIN IMMEDIATE; COMMIT');
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  } catch (err) {
    db.close();
    throw new RestoreRefused(
      `${path.dirname(dataFile)} is in use by a running service (${(err as Error).message}): stop it, then restore`,
    );
  }
  db.close();
}

/** The renames reach the disk with the directory's entry. */
function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
