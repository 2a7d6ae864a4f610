import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { AuditEvent } from '@medplum/fhirtypes';

/** AUDIT_SPOOL_DIR's value for "no spool": the AuditEvents waiting live in this process's memory only. */
export const NO_SPOOL = ':memory:';

/** An AuditEvent the FHIR server has not taken yet, with its place in the spool. */
export interface Spooled {
  seq: number;
  event: AuditEvent;
  /**
   * It may already be on the server: a request that carried it got no answer, or it comes from a process that died.
   * Written conditionally (on its audit-key tag), so it lands once.
   */
  uncertain: boolean;
}

const FILE = /^audit-.+\.sqlite$/;
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS spool (server TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
`;

/**
 * The AuditEvents a process has recorded and the FHIR server has not yet taken, in a file on disk, so that a process
 * that dies (killed, out of memory, a host restart) while the server is down or slow loses none of them.
 *
 * One SQLite file per process (`audit-<id>.sqlite`, WAL; `sync` `normal`: synchronous=NORMAL, an insert survives the
 * process dying, not always a power loss; `full`: an fsync per insert, which survives that too), held with an
 * exclusive lock until the process ends. Processes can share the directory
 * (replicas on one volume): a file whose lock is free belongs to a process that is gone, and the next process that
 * looks adopts it, if it was written for the same FHIR server. An in-memory spool (`:memory:`) keeps nothing.
 */
export class AuditSpool {
  private readonly insert: StatementSync;
  private readonly removeUpTo: StatementSync;
  private readonly count: StatementSync;
  private closed = false;
  private leftAlone = 0;

  private constructor(
    private readonly db: DatabaseSync,
    private readonly file: string | undefined,
    private readonly server: string,
  ) {
    this.insert = db.prepare('INSERT INTO events (body) VALUES (?)');
    this.removeUpTo = db.prepare('DELETE FROM events WHERE seq <= ?');
    this.count = db.prepare('SELECT count(*) AS n FROM events');
  }

  /** This process's spool in `dir` (created when missing) for the AuditEvents bound for `server` (its base URL). */
  static open(dir: string, server: string, options: { sync?: 'normal' | 'full' } = {}): AuditSpool {
    if (dir === NO_SPOOL) {
      const db = new DatabaseSync(NO_SPOOL);
      db.exec(SCHEMA);
      return new AuditSpool(db, undefined, server);
    }
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `audit-${Date.now().toString(36)}-${randomUUID()}.sqlite`);
    const db = lockedDatabase(file);
    if (!db) throw new Error(`AUDIT_SPOOL_DIR ${dir}: could not lock a new spool file`);
    db.exec('PRAGMA journal_mode = WAL');
    db.exec(`PRAGMA synchronous = ${options.sync === 'full' ? 'FULL' : 'NORMAL'}`);
    db.exec(SCHEMA);
    db.prepare('INSERT INTO spool (server) VALUES (?)').run(server);
    return new AuditSpool(db, file, server);
  }

  /** When an insert reaches the disk, as SQLite was told (`synchronous`); `memory` for an in-memory spool. */
  get sync(): 'normal' | 'full' | 'memory' {
    if (!this.file) return 'memory';
    return (this.db.prepare('PRAGMA synchronous').get() as { synchronous: number }).synchronous >= 2
      ? 'full'
      : 'normal';
  }

  /** Where the spool is kept, or undefined in memory. */
  get location(): string | undefined {
    return this.file;
  }

  /** Keeps `event` until remove() passes its seq; returns that seq. */
  add(event: AuditEvent): number {
    return Number(this.insert.run(JSON.stringify(event)).lastInsertRowid);
  }

  /** The server has taken every event up to `seq`. */
  remove(seq: number): void {
    this.removeUpTo.run(seq);
  }

  /**
   * Events the last adoptOrphans() left in the spools of stopped processes bound for another FHIR server: nobody
   * writes them until a process bound for that server runs on this directory.
   */
  get foreignWaiting(): number {
    return this.leftAlone;
  }

  /** How many events wait here. */
  get size(): number {
    return (this.count.get() as { n: number }).n;
  }

  /**
   * Moves into this spool the events of every spool file in the same directory whose process is gone and which was
   * written for the same server, oldest file first, and deletes those files. Returns them, each as uncertain: the
   * dead process may have written them just before it died. Files of live processes (locked) and of other servers
   * are left alone, but for empty ones.
   */
  adoptOrphans(): Spooled[] {
    if (!this.file) return [];
    const dir = path.dirname(this.file);
    const adopted: Spooled[] = [];
    let leftAlone = 0;
    for (const name of fs
      .readdirSync(dir)
      .filter((n) => FILE.test(n))
      .sort()) {
      const file = path.join(dir, name);
      if (file === this.file) continue;
      const orphan = lockedDatabase(file);
      if (!orphan) continue;
      let events: AuditEvent[];
      try {
        const meta = orphan.prepare('SELECT server FROM spool').get() as { server: string } | undefined;
        events = (orphan.prepare('SELECT body FROM events ORDER BY seq').all() as { body: string }[]).map(
          (row) => JSON.parse(row.body) as AuditEvent,
        );
        // Another server's events wait for a process bound for it; an empty spool has nothing to lose.
        if (meta?.server !== this.server && events.length) {
          leftAlone += events.length;
          continue;
        }
      } catch {
        // Not a spool this code wrote (or died before its schema): not ours to delete.
        continue;
      } finally {
        orphan.close();
      }
      // Into this spool first, then the orphan removed: a crash between the two leaves copies, written once.
      this.db.exec('BEGIN');
      for (const event of events) adopted.push({ seq: this.add(event), event, uncertain: true });
      this.db.exec('COMMIT');
      removeDatabaseFiles(file);
    }
    this.leftAlone = leftAlone;
    return adopted;
  }

  /** Closes the spool; its file is deleted when nothing waits in it, else kept for the next process to adopt. */
  close(): { kept: number } {
    if (this.closed) return { kept: 0 };
    this.closed = true;
    const kept = this.size;
    this.db.close();
    if (this.file && kept === 0) removeDatabaseFiles(this.file);
    return { kept };
  }
}

/**
 * The database at `file`, held with an exclusive lock until closed (or until this process dies), or undefined when
 * another connection (another process, or another spool of this one) holds it.
 */
function lockedDatabase(file: string): DatabaseSync | undefined {
  const db = new DatabaseSync(file);
  try {
    db.exec('PRAGMA busy_timeout = 0');
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    db.exec('BEGIN IMMEDIATE; COMMIT');
    return db;
  } catch {
    db.close();
    return undefined;
  }
}

function removeDatabaseFiles(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(`${file}${suffix}`, { force: true });
}
