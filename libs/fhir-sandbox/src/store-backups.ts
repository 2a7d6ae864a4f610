import * as fs from 'node:fs';
import * as path from 'node:path';
import { PARTIAL_SUFFIX, type BackupProgress, type StoreBackup } from './store-backup';

/** A backup on disk, for the operations API. */
export interface BackupFile {
  name: string;
  bytes: number;
  createdAt: string;
}

export interface StoreBackupsOptions {
  dir: string;
  /** How often a backup is written; 0: only when asked (backupNow). */
  everyMs: number;
  /** How many backups are kept; older ones are deleted after each new one. */
  keep: number;
  /** Structured log lines: file names, sizes and durations, never data. */
  log: (level: 'info' | 'error', entry: Record<string, unknown>) => void;
}

/** Progress is logged for a copy of at least this many pages (256 MB of 4-KB pages), each 10%. */
const LOGGED_PROGRESS_PAGES = 65_536;
/** setTimeout's longest delay; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A backup that failed is tried again this much later (not a whole interval). */
const RETRY_AFTER_MS = 15 * 60_000;

/** `fhir-2026-12-02T03-00-00-000Z.sqlite`: sorts by time, and names no patient. */
export function backupFileName(at: Date): string {
  return `fhir-${at.toISOString().replace(/[:.]/g, '-')}.sqlite`;
}

/** backupFileName's names, with the time's parts. */
const BACKUP_FILE = /^fhir-(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z\.sqlite$/;

/** A backup's copy a killed process left half-written (store-backup.ts names it so until it is checked). */
function isPartial(name: string): boolean {
  return name.endsWith(PARTIAL_SUFFIX) && BACKUP_FILE.test(name.slice(0, -PARTIAL_SUFFIX.length));
}

/** When a backup was taken, from its name (a copied file's mtime is the copy's). */
function backupTimeOf(name: string): string {
  const [, date, h, m, sec, ms] = BACKUP_FILE.exec(name)!;
  return `${date}T${h}:${m}:${sec}.${ms}Z`;
}

/**
 * When the next scheduled backup is due: an interval after the newest one on disk, so a service restarted every few
 * hours still backs up on time, and at once when there is none or it is overdue.
 */
export function nextBackupDue(newest: Date | undefined, everyMs: number, now: Date): Date {
  if (!newest) return now;
  return new Date(Math.max(now.getTime(), newest.getTime() + everyMs));
}

/** The backups beyond the newest `keep` (names sort by time). */
export function backupsToPrune(names: string[], keep: number): string[] {
  const backups = names.filter((name) => BACKUP_FILE.test(name)).sort();
  return backups.slice(0, Math.max(0, backups.length - keep));
}

/** The backups in `dir`, newest first (none when it does not exist). */
export function backupsIn(dir: string): BackupFile[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((name) => BACKUP_FILE.test(name))
    .sort()
    .reverse()
    .map((name) => ({ name, bytes: fs.statSync(path.join(dir, name)).size, createdAt: backupTimeOf(name) }));
}

/**
 * The embedded store's backups: on a schedule and when an admin asks, one at a time (a second request while one runs
 * gets that one), each a checked copy (SqliteRepository.backupTo), the oldest deleted beyond `keep`. Restoring one is
 * restoreStore's (`npm run fhir-store:restore`), with the service stopped.
 */
export class StoreBackups {
  private running?: Promise<StoreBackup>;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Backups that failed since the process started (metrics). */
  failures = 0;

  constructor(
    private readonly backupTo: (file: string, onProgress?: BackupProgress) => Promise<StoreBackup>,
    private readonly options: StoreBackupsOptions,
  ) {}

  get dir(): string {
    return this.options.dir;
  }

  /** A backup now; while one is being written, that one. */
  backupNow(): Promise<StoreBackup> {
    if (this.stopped) return Promise.reject(new Error('the service is stopping'));
    return (this.running ??= this.write().finally(() => (this.running = undefined)));
  }

  /** The backups on disk, newest first. */
  list(): BackupFile[] {
    return backupsIn(this.options.dir);
  }

  /** Schedules backups every `everyMs` (none when 0), the first when the newest on disk is that old. */
  start(now = new Date()): void {
    if (!this.options.everyMs) return;
    const newest = this.list()[0];
    this.scheduleAt(nextBackupDue(newest && new Date(newest.createdAt), this.options.everyMs, now));
  }

  /** Stops the schedule and waits for a backup being written (the store must not close under it). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  private scheduleAt(at: Date): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const wait = at.getTime() - Date.now();
    this.timer = setTimeout(
      () => {
        // A wait past the longest timer (~24.8 days) is made in several.
        if (Date.now() < at.getTime()) return this.scheduleAt(at);
        this.backupNow().then(
          () => this.scheduleAt(new Date(Date.now() + this.options.everyMs)),
          () => this.scheduleAt(new Date(Date.now() + Math.min(RETRY_AFTER_MS, this.options.everyMs))),
        );
      },
      Math.min(MAX_TIMER_MS, Math.max(0, wait)),
    );
    // A pending backup does not keep the process alive.
    this.timer.unref();
  }

  private async write(): Promise<StoreBackup> {
    const { dir, keep, log } = this.options;
    const file = path.join(dir, backupFileName(new Date()));
    let logged = 0;
    const progress: BackupProgress = (copied, total) => {
      const percent = Math.floor((copied / total) * 10) * 10;
      if (total < LOGGED_PROGRESS_PAGES || percent <= logged || percent >= 100) return;
      logged = percent;
      log('info', { msg: 'FHIR store backup under way', file: path.basename(file), percent });
    };
    try {
      fs.mkdirSync(dir, { recursive: true });
      // A copy a killed process left half-written (one backup runs at a time: none is in progress).
      for (const name of fs.readdirSync(dir).filter(isPartial)) fs.rmSync(path.join(dir, name), { force: true });
      const backup = await this.backupTo(file, progress);
      const pruned = backupsToPrune(fs.readdirSync(dir), keep);
      for (const name of pruned) fs.rmSync(path.join(dir, name), { force: true });
      log('info', {
        msg: 'FHIR store backup written',
        file: path.basename(file),
        bytes: backup.bytes,
        resources: backup.resources,
        ms: backup.durationMs,
        pruned: pruned.length,
      });
      return backup;
    } catch (err) {
      this.failures++;
      log('error', { msg: 'FHIR store backup failed', file: path.basename(file), err: (err as Error).message });
      throw err;
    }
  }
}
