import * as fs from 'node:fs';
import { backup, type DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';

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
 * DELETE), checked (quick_check) in a thread of its own while the store serves again, and only then given its name:
 * a file by that name is always a whole, checked store.
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
    const resources = await checkStoreFile(partial);
    fs.renameSync(partial, file);
    return { file, bytes: fs.statSync(file).size, resources, durationMs: Math.round(performance.now() - started) };
  } catch (err) {
    fs.rmSync(partial, { force: true });
    throw err;
  }
}

/**
 * Makes a copy one self-contained file and checks it, in a worker thread: SQLite's quick_check reads every page
 * (about as long as the copy took), and on the store's own thread it held every request back that long again.
 * Resolves with the number of resources the file holds; rejects, saying why, when SQLite finds it damaged.
 */
export function checkStoreFile(file: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    // Plain JavaScript evaluated in the thread: jest runs this lib's TypeScript sources, which a thread cannot load.
    const worker = new Worker(CHECK_STORE_FILE, { eval: true, workerData: file });
    let answered = false;
    worker.once('message', (result: { resources?: number; problem?: string }) => {
      answered = true;
      if (result.problem === undefined) resolve(result.resources!);
      else reject(new Error(result.problem));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (!answered) reject(new Error(`the check of ${file} stopped (exit code ${code})`));
    });
  });
}

const CHECK_STORE_FILE = `
const { parentPort, workerData: file } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
let copy;
try {
  copy = new DatabaseSync(file);
  copy.exec('PRAGMA journal_mode = DELETE');
  const problems = copy.prepare('PRAGMA quick_check').all().map((row) => row.quick_check).filter((r) => r !== 'ok');
  if (problems.length) throw new Error("SQLite's quick_check failed: " + problems.slice(0, 3).join('; '));
  parentPort.postMessage({ resources: copy.prepare('SELECT count(*) AS n FROM resource').get().n });
} catch (err) {
  parentPort.postMessage({ problem: file + ' is not a whole store: ' + (err instanceof Error ? err.message : String(err)) });
} finally {
  copy?.close();
}
`;
