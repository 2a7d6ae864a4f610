import * as fs from 'node:fs';
import { backup, DatabaseSync } from 'node:sqlite';

/** A backup written: where, its size, the resources it holds, how long it took. */
export interface StoreBackup {
  file: string;
  bytes: number;
  resources: number;
  durationMs: number;
}

/** Pages copied so far, of the database's total. */
export type BackupProgress = (copiedPages: number, totalPages: number) => void;

/** The copy's name until it is whole and checked. */
export const PARTIAL_SUFFIX = '.partial';

/** Pages copied per step (4 MB of 4-KB pages): progress is reported between steps. */
const PAGES_PER_STEP = 1024;

/**
 * Copies the store's database into `file` with SQLite's online backup, page for page (no rebuild). `exclusively`
 * runs the copy with every other operation of the store held back and no transaction open (the commit queue's
 * `alone`): SQLite restarts a backup whose source another connection changes, and fails one started inside an open
 * write transaction of its own connection. The copy is written beside `file`, made a single file (journal mode
 * DELETE), checked (quick_check) once the store serves again, and only then given its name: a file by that name is
 * always a whole, checked store.
 */
export async function backupStore(
  db: DatabaseSync,
  exclusively: <T>(fn: () => Promise<T>) => Promise<T>,
  file: string,
  onProgress?: BackupProgress,
): Promise<StoreBackup> {
  const started = performance.now();
  const partial = `${file}${PARTIAL_SUFFIX}`;
  fs.rmSync(partial, { force: true });
  try {
    // SQLite reports between steps only; the last one is reported here.
    const pages = await exclusively(() =>
      backup(db, partial, {
        rate: PAGES_PER_STEP,
        progress: ({ totalPages, remainingPages }) => onProgress?.(totalPages - remainingPages, totalPages),
      }),
    );
    onProgress?.(pages, pages);
    const resources = checkedCopy(partial);
    fs.renameSync(partial, file);
    return { file, bytes: fs.statSync(file).size, resources, durationMs: Math.round(performance.now() - started) };
  } catch (err) {
    fs.rmSync(partial, { force: true });
    throw err;
  }
}

/** Makes the copy one self-contained file and checks it; the number of resources it holds. */
function checkedCopy(file: string): number {
  const copy = new DatabaseSync(file);
  try {
    copy.exec('PRAGMA journal_mode = DELETE');
    const problems = (copy.prepare('PRAGMA quick_check').all() as { quick_check: string }[])
      .map((row) => row.quick_check)
      .filter((result) => result !== 'ok');
    if (problems.length) throw new Error(`the copy failed SQLite's quick_check: ${problems.slice(0, 3).join('; ')}`);
    return (copy.prepare('SELECT count(*) AS n FROM resource').get() as { n: number }).n;
  } finally {
    copy.close();
  }
}
