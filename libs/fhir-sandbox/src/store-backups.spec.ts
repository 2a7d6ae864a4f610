import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { StoreBackup } from './store-backup';
import { backupFileName, backupsToPrune, nextBackupDue, StoreBackups } from './store-backups';

const at = (iso: string) => new Date(iso);
const DAY = 24 * 3600_000;

describe('when backups are due, which are kept', () => {
  it('names sort by time and hold nothing but it', () => {
    expect(backupFileName(at('2026-12-02T03:04:05.678Z'))).toBe('fhir-2026-12-02T03-04-05-678Z.sqlite');
  });

  it('an interval after the newest on disk (a restarted service keeps the rhythm); at once if none or overdue', () => {
    const now = at('2026-12-02T12:00:00.000Z');
    expect(nextBackupDue(undefined, DAY, now)).toEqual(now);
    expect(nextBackupDue(at('2026-12-02T03:00:00.000Z'), DAY, now)).toEqual(at('2026-12-03T03:00:00.000Z'));
    expect(nextBackupDue(at('2026-11-30T03:00:00.000Z'), DAY, now)).toEqual(now);
  });

  it('prunes the oldest beyond `keep`, and only backup files', () => {
    const names = ['2026-12-01', '2026-11-29', '2026-12-02', '2026-11-30'].map((d) =>
      backupFileName(at(`${d}T03:00:00Z`)),
    );
    expect(backupsToPrune([...names, 'notes.txt', 'fhir.sqlite'], 2)).toEqual([
      'fhir-2026-11-29T03-00-00-000Z.sqlite',
      'fhir-2026-11-30T03-00-00-000Z.sqlite',
    ]);
    expect(backupsToPrune(names, 7)).toEqual([]);
  });
});

describe('StoreBackups', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-backups-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A stand-in for the store's backupTo: writes the file when released. */
  function fakeStore() {
    const calls: string[] = [];
    let release: () => void = () => undefined;
    const backupTo = (file: string): Promise<StoreBackup> => {
      calls.push(file);
      return new Promise((resolve) => {
        release = () => {
          fs.writeFileSync(file, 'copy');
          resolve({ file, bytes: 4, resources: 1, durationMs: 1 });
        };
      });
    };
    return { calls, backupTo, release: () => release() };
  }

  const options = (keep = 7) => ({ dir: path.join(dir, 'backups'), everyMs: 0, keep, log: () => undefined });

  it('one backup at a time: a second request while one is written gets that one', async () => {
    const store = fakeStore();
    const backups = new StoreBackups(store.backupTo, options());
    const first = backups.backupNow();
    const second = backups.backupNow();
    await new Promise((resolve) => setImmediate(resolve));
    store.release();
    expect(await second).toEqual(await first);
    expect(store.calls).toHaveLength(1);
    expect(backups.list().map((b) => b.name)).toEqual([path.basename(store.calls[0])]);
  });

  it('keeps the newest `keep`, newest first; a failure is counted and leaves the others', async () => {
    const written: string[] = [];
    const backups = new StoreBackups((file) => {
      fs.writeFileSync(file, 'copy');
      written.push(path.basename(file));
      return Promise.resolve({ file, bytes: 4, resources: 1, durationMs: 1 });
    }, options(2));
    for (let i = 0; i < 3; i++) {
      await backups.backupNow();
      await new Promise((resolve) => setTimeout(resolve, 2)); // distinct names (ms)
    }
    expect(backups.list().map((b) => b.name)).toEqual([written[2], written[1]]);

    // A copy a killed process left half-written goes with the next backup.
    const leftover = path.join(options().dir, `${backupFileName(at('2026-11-01T00:00:00Z'))}.partial`);
    fs.writeFileSync(leftover, 'half');
    await backups.backupNow();
    expect(fs.existsSync(leftover)).toBe(false);

    const failing = new StoreBackups(() => Promise.reject(new Error('disk full')), options(2));
    await expect(failing.backupNow()).rejects.toThrow('disk full');
    expect(failing.failures).toBe(1);
    expect(failing.list()).toHaveLength(2);
    expect(fs.readdirSync(options().dir).filter((n) => n.endsWith('.partial'))).toEqual([]);
  });

  it('the schedule waits an interval after the newest on disk, even one longer than the longest timer', async () => {
    jest.useFakeTimers({ now: at('2026-12-02T12:00:00.000Z'), doNotFake: ['setImmediate'] });
    try {
      const written: string[] = [];
      const backups = new StoreBackups(
        (file) => {
          fs.writeFileSync(file, 'copy');
          written.push(path.basename(file));
          return Promise.resolve({ file, bytes: 4, resources: 1, durationMs: 1 });
        },
        { ...options(), everyMs: 30 * DAY },
      );
      await backups.backupNow();
      expect(written).toHaveLength(1);
      backups.start();
      // setTimeout fires at once for a delay over 2^31-1 ms (~24.8 days): the schedule must not.
      await jest.advanceTimersByTimeAsync(29 * DAY);
      expect(written).toHaveLength(1);
      await jest.advanceTimersByTimeAsync(DAY + 1000);
      expect(written).toHaveLength(2);
      await backups.stop();
    } finally {
      jest.useRealTimers();
    }
  });

  it('stop() waits for the backup being written and refuses new ones', async () => {
    const store = fakeStore();
    const backups = new StoreBackups(store.backupTo, options());
    const running = backups.backupNow();
    let stopped = false;
    const stopping = backups.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    store.release();
    await Promise.all([running, stopping]);
    await expect(backups.backupNow()).rejects.toThrow('stopping');
  });
});
