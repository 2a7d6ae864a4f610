import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  OperationOutcomeError,
  Operator,
  applyPatch,
  badRequest,
  fhirpathPatchTypedValue,
  generateId,
  globalSchema,
  normalizeOperationOutcome,
  notFound,
  parseFhirPathPatchParameters,
  preconditionFailed,
  stringify,
  toTypedValue,
  validateResource,
} from '@medplum/core';
import type { Operation, SearchRequest, WithId } from '@medplum/core';
import { FhirRepository, getExtraEntries } from '@medplum/fhir-router';
import type {
  CreateResourceOptions,
  DeleteResourceOptions,
  RepositoryMode,
  UpdateResourceOptions,
} from '@medplum/fhir-router';
import type { Binary, Bundle, BundleEntry, Parameters, Reference, Resource } from '@medplum/fhirtypes';
import { v7 as uuidv7 } from 'uuid';
import { CommitQueue } from './commit-queue';
import {
  OPEN_HI,
  OPEN_LO,
  indexRowsOf,
  searchParamsOf,
  type IndexKind,
  type IndexedParam,
  type IndexRows,
} from './search-index';
import { MEDPLUM_MAX_SEARCH_OFFSET, withMedplumPageSize } from './search-paging';
import { SqliteSearch } from './sqlite-search';
import { backupStore, type BackupProgress, type StoreBackup } from './store-backup';
import type { StoreChange } from './store-change';
import type { NotifierStats } from './subscription-notifier';

/** Where the data lives: a directory (the file `fhir.sqlite` inside it), or `:memory:`. */
export const IN_MEMORY = ':memory:';
export const DB_FILE = 'fhir.sqlite';

/**
 * Bump when what the index holds changes (or Medplum's search parameter definitions do): an existing store is
 * re-indexed from its resources when it is opened.
 */
const INDEX_VERSION = '3';

/**
 * When a commit reaches the disk: `normal` (WAL, synchronous=NORMAL: a commit survives the process dying; after a power
 * loss or an OS crash the last few may be lost, the file stays consistent) or `full` (an fsync at every commit: they
 * survive that too, and each commit waits for the disk).
 */
export type StoreSync = 'normal' | 'full';

/** The embedded store's size and work, for operators (SqliteRepository.storageStats). */
export interface StoreStats {
  /** The database file (pages in use or free), bytes. */
  databaseBytes: number;
  /** The write-ahead log not yet copied into the file (0 in memory), bytes. */
  walBytes: number;
  /** Commits so far (each answers one or more operations). */
  groupCommits: number;
  /** Search parameters the index keeps rows for (each built on its first search). */
  indexedParameters: number;
  /** Changes in the notification outbox: committed, their Subscriptions' notifications not all settled yet. */
  outbox: number;
  /** The store's Subscriptions and their notifications (the server adds them; none when it has no notifier). */
  notifications?: NotifierStats;
}

/** A parameter's index, built on its first search over the resources already stored. */
export interface IndexBuilt {
  /** `Task:owner` */
  parameter: string;
  resources: number;
  ms: number;
}

/**
 * Every B-tree a write lands in costs a page written to the WAL at commit (index inserts land on random pages, one
 * each): 50 pages (216 KB, 102 write syscalls) per Task create with a token index by system as well as by value,
 * 41 with one token index over (p, value, system), which answers value and value+system lookups. A system-only
 * lookup (`identifier=system|`, never made by the service) scans the parameter's rows instead. Stores written with
 * the old layout lose the two old token indexes on open (the rows are the same).
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, change TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS indexed_param (p TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS binary_content (id TEXT PRIMARY KEY, content BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS resource (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id TEXT NOT NULL,
  last_updated TEXT NOT NULL,
  content TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS resource_type_id ON resource (type, id);
CREATE TABLE IF NOT EXISTS history (
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id TEXT NOT NULL,
  content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_type_id ON history (type, id);
CREATE TABLE IF NOT EXISTS token (seq INTEGER NOT NULL, p TEXT NOT NULL, system TEXT, value TEXT);
DROP INDEX IF EXISTS token_value;
DROP INDEX IF EXISTS token_system;
CREATE INDEX IF NOT EXISTS token_value_system ON token (p, value, system);
CREATE INDEX IF NOT EXISTS token_seq ON token (seq, p);
CREATE TABLE IF NOT EXISTS ref (seq INTEGER NOT NULL, p TEXT NOT NULL, ref TEXT NOT NULL, tail TEXT);
CREATE INDEX IF NOT EXISTS ref_ref ON ref (p, ref);
DROP INDEX IF EXISTS ref_tail;
CREATE INDEX IF NOT EXISTS ref_tail_single ON ref (p, tail) WHERE tail IS NOT NULL;
CREATE INDEX IF NOT EXISTS ref_seq ON ref (seq, p);
CREATE TABLE IF NOT EXISTS date (seq INTEGER NOT NULL, p TEXT NOT NULL, lo TEXT NOT NULL, hi TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS date_lo ON date (p, lo);
CREATE INDEX IF NOT EXISTS date_hi ON date (p, hi);
CREATE INDEX IF NOT EXISTS date_seq ON date (seq, p);
CREATE TABLE IF NOT EXISTS absent (seq INTEGER NOT NULL, p TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS absent_p ON absent (p, seq);
CREATE INDEX IF NOT EXISTS absent_seq ON absent (seq, p);
CREATE TABLE IF NOT EXISTS str (seq INTEGER NOT NULL, p TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS str_seq ON str (seq, p);
CREATE VIRTUAL TABLE IF NOT EXISTS str_text USING fts5(
  value, content='str', content_rowid='rowid', tokenize='trigram case_sensitive 1'
);
CREATE TRIGGER IF NOT EXISTS str_inserted AFTER INSERT ON str BEGIN
  INSERT INTO str_text (rowid, value) VALUES (new.rowid, new.value);
END;
CREATE TRIGGER IF NOT EXISTS str_deleted AFTER DELETE ON str BEGIN
  INSERT INTO str_text (str_text, rowid, value) VALUES ('delete', old.rowid, old.value);
END;
CREATE TRIGGER IF NOT EXISTS str_updated AFTER UPDATE ON str BEGIN
  INSERT INTO str_text (str_text, rowid, value) VALUES ('delete', old.rowid, old.value);
  INSERT INTO str_text (rowid, value) VALUES (new.rowid, new.value);
END;
`;

/** The tables of index rows (SCHEMA), each keyed by `seq`: cleared, rebuilt, counted and unindexed together. */
const INDEX_TABLES = ['token', 'ref', 'date', 'absent', 'str'] as const;
/** An index table holding a parameter's values: its columns (the parameter key first) and a resource's rows for it. */
interface ValueTable {
  table: string;
  kind: IndexKind;
  cols: string[];
  insert: string;
  rowsOf: (rows: IndexRows) => (string | null)[][];
}

function valueTable(table: string, kind: IndexKind, cols: string[], rowsOf: ValueTable['rowsOf']): ValueTable {
  const insert = `INSERT INTO ${table} (seq, ${cols.join(', ')}) VALUES (?, ${cols.map(() => '?').join(', ')})`;
  return { table, kind, cols, insert, rowsOf };
}

/** The index tables holding values (all but `absent`, which holds keys alone): written and updated through this list. */
const VALUE_TABLES: ValueTable[] = [
  valueTable('token', 'token', ['p', 'system', 'value'], (rows) =>
    rows.tokens.map(([key, t]) => [key, t.system, t.value]),
  ),
  valueTable('ref', 'reference', ['p', 'ref', 'tail'], (rows) => rows.refs),
  valueTable('date', 'date', ['p', 'lo', 'hi'], (rows) => rows.dates),
  valueTable('str', 'string', ['p', 'value'], (rows) => rows.strings),
];

/** Deletes every index row. */
const CLEAR_INDEX = INDEX_TABLES.map((table) => `DELETE FROM ${table};`).join(' ');

/** The WAL size (pages of 4 KB: ~200 MB) at which SQLite checkpoints inside a commit, when the store never idles. */
const WAL_HARD_CHECKPOINT_PAGES = 50_000;
/** `PRAGMA cache_size` (negative: KiB): 16 MB; why not more, see the constructor. */
const PAGE_CACHE_KIB = -16_384;

/**
 * A durable FHIR repository for Medplum's FhirRouter: resources and their history in SQLite (node:sqlite), with
 * a token / reference / date / string index written at write time, so the searches this service makes cost what they
 * match, not what is stored. A parameter is indexed from its first search on (ensureIndexed): writes pay only for
 * the parameters someone searches.
 *
 * Semantics follow Medplum's MemoryRepository, which this replaces: the same matching (the index holds exactly
 * the values `matchesSearchRequest` compares, computed with the same Medplum functions), insertion order, the same
 * errors; a date `_sort` in chronological order and `total` only when asked, as Medplum's server does. Searches:
 * SqliteSearch (sqlite-search.ts), over the index this class writes.
 *
 * Durability: every write commits an SQLite transaction (WAL, synchronous=NORMAL: a committed write survives a
 * process crash; on power loss the last commits may be lost, the file stays consistent). `withTransaction`, used
 * by FhirRouter for transaction Bundles and conditional writes, is one SQLite transaction: all or nothing.
 *
 * Concurrency: one connection, so operations are serialised by an async lock (a transaction Bundle runs alone;
 * no one reads its uncommitted writes), and answered once committed, several to a commit under load: CommitQueue
 * (commit-queue.ts). Calls made inside an operation or transaction (FhirRouter passes the repository back in) run
 * without waiting for the lock.
 */
export class SqliteRepository extends FhirRepository {
  readonly location: string;
  private readonly db: DatabaseSync;
  /** One operation at a time, answered once committed (commit-queue.ts). */
  private readonly ops: CommitQueue<StoreChange>;
  private readonly statements = new Map<string, StatementSync>();
  private readonly paramsByType = new Map<string, IndexedParam[]>();
  /** Keys (`Task:status`) of the parameters the index keeps rows for: those searched at least once (ensureIndexed). */
  private readonly indexed = new Set<string>();
  private readonly indexedParamsByType = new Map<string, IndexedParam[]>();
  /** maxSpanMs's answers, by date parameter key: read once, then widened by every date row written. */
  private readonly spans = new Map<string, number>();
  private readonly onIndexBuilt?: (built: IndexBuilt) => void;
  private readonly searcher: SqliteSearch;
  private seeding = false;
  private closed = false;
  private readonly outbox?: (resourceType: string) => boolean;

  /**
   * @param location - a directory (created when missing) or `:memory:`
   * @param options.onIndexBuilt - told when a parameter's first search built its index over the stored resources
   * @param options.maxSearchOffset - the largest `_offset` answered (Medplum's server: 10,000); deeper pages by cursor
   * @param options.sync - when commits reach the disk (StoreSync; default `normal`)
   * @param options.onCommitted - told of each commit's creates, updates and deletes, in order (Subscriptions)
   * @param options.outbox - whether a change of this type is kept in the outbox, in its own commit, until the one told
   *   of it says it is done with it (outboxDone): Subscriptions' notifications that survive a stop
   */
  constructor(
    location: string = IN_MEMORY,
    options: {
      onIndexBuilt?: (built: IndexBuilt) => void;
      maxSearchOffset?: number;
      sync?: StoreSync;
      onCommitted?: (changes: StoreChange[]) => void;
      outbox?: (resourceType: string) => boolean;
    } = {},
  ) {
    super();
    this.onIndexBuilt = options.onIndexBuilt;
    this.outbox = options.outbox;
    this.searcher = new SqliteSearch({
      stmt: (sql) => this.stmt(sql),
      params: (resourceType) => this.params(resourceType),
      ensureIndexed: (resourceType, param) => this.ensureIndexed(resourceType, param),
      maxSpanMs: (key) => this.maxSpanMs(key),
      maxSearchOffset: options.maxSearchOffset ?? MEDPLUM_MAX_SEARCH_OFFSET,
    });
    if (!globalSchema.types.Task?.searchParams?.identifier)
      throw new Error('SqliteRepository: index the FHIR definitions (search parameters) before opening a store');
    this.location = location;
    if (location === IN_MEMORY) {
      this.db = new DatabaseSync(IN_MEMORY);
    } else {
      fs.mkdirSync(location, { recursive: true });
      this.db = new DatabaseSync(path.join(location, DB_FILE));
      this.lockForThisProcess(location);
      this.db.exec('PRAGMA journal_mode = WAL');
      this.db.exec(`PRAGMA synchronous = ${options.sync === 'full' ? 'FULL' : 'NORMAL'}`);
      // Checkpoints (copying the WAL into the file, with an fsync) run when the store is idle (checkpointWhenIdle),
      // not inside the commit that crosses a size: run inside commits, they were half of a follow-up event's store
      // time (94 -> 130 events/s without them). Under load that never pauses, SQLite still checkpoints at
      // ~200 MB of WAL; once checkpointed, the WAL is cut back to 64 MB at most.
      this.db.exec(`PRAGMA wal_autocheckpoint = ${WAL_HARD_CHECKPOINT_PAGES}`);
      this.db.exec('PRAGMA journal_size_limit = 67108864');
    }
    this.db.exec('PRAGMA busy_timeout = 5000');
    // 16 MB of page cache (SQLite's default is 2 MB). More costs every commit: a B-tree split parks a page at the
    // pending-byte page number (262,145), so a store under 1 GB ends each write transaction with SQLite scanning its
    // whole page-cache hash table, whose size follows the cache's. At 64 MB that scan was 8.8% of the store thread's
    // CPU in follow-up events (perf). Over 100k Tasks an event-shaped load cost 13% less CPU with 16 MB than with
    // 64 MB; with 8 MB the cache misses ate the gain.
    this.db.exec(`PRAGMA cache_size = ${PAGE_CACHE_KIB}`);
    // Every write runs in a savepoint inside its group's transaction (commit-queue.ts), and SQLite copies each page a
    // savepoint first changes into a sub-journal, a temporary file past 64 KB: under approvals, 2 of every 3 pwrite
    // calls of the store went there (~8% of its CPU). In memory, a group's sub-journal is a few MB at most (the pages
    // it touched); it only ever holds uncommitted writes, which a crash loses anyway.
    this.db.exec('PRAGMA temp_store = MEMORY');
    this.ops = new CommitQueue(this.db, {
      durable: location !== IN_MEMORY,
      onRollback: () => this.loadIndexedParams(),
      onCommitted: options.onCommitted,
    });
    this.db.exec(SCHEMA);
    this.loadIndexedParams();
    this.reindexIfStale();
    this.historyOfSupersededOnly();
  }

  /**
   * One process per data directory: the operation lock is in-process, so a second process on the same files would
   * interleave its writes with ours. Exclusive locking mode keeps the file lock from the first write until close (or
   * until the process dies), and a second opener fails at once, saying why.
   */
  private lockForThisProcess(location: string): void {
    this.db.exec('PRAGMA locking_mode = EXCLUSIVE');
    this.db.exec('PRAGMA busy_timeout = 0');
    try {
      this.db.exec('BEGIN IMMEDIATE; COMMIT');
    } catch (err) {
      this.db.close();
      throw new Error(
        `FHIR_DATA_DIR ${location} is in use by another process (${(err as Error).message}); one process per data directory`,
        { cause: err },
      );
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ops.close();
    this.statements.clear();
    this.db.close();
  }

  /** Puts this repository into "seeding" mode, during which meta.versionId and meta.lastUpdated are kept. */
  async withSeeding<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.seeding) return fn();
    this.seeding = true;
    try {
      return await fn();
    } finally {
      this.seeding = false;
    }
  }

  /** Removes every resource, version and index row. */
  clear(): void {
    this.ops.atomic(() =>
      this.db.exec(`DELETE FROM resource; DELETE FROM history; DELETE FROM outbox; ${CLEAR_INDEX}`),
    );
    this.spans.clear();
  }

  setMode(_mode: RepositoryMode): void {
    // One connection: no reader/writer split.
  }

  /**
   * Server-assigned ids are time-ordered (UUIDv7), so a new resource's entries land at the end of the id indexes
   * (resource, history, `_id`, and references to it) instead of on random pages: a random index insert in a store of
   * 100k resources cost ~40 us more than an append here (page reads once the file outgrows the cache, and one more
   * dirty page at commit each).
   */
  generateId(): string {
    return uuidv7();
  }

  // ---------------------------------------------------------------- writes

  /**
   * What Medplum's server does before every create and update (its Repository, strict mode, the default): the resource
   * is checked against the base FHIR R4 StructureDefinition (required elements, cardinality, types, unknown
   * elements), and an invalid one is refused with 400 and the issues. FhirRouter leaves this to the repository, so
   * without it the embedded store took what a Medplum server refuses. Copies written while seeding (restored
   * versions) were checked when first written. Not checked here: profiles named in meta.profile, and codes against
   * required bindings (@medplum/core's validator does not look them up).
   */
  private validate(resource: Resource): void {
    if (!this.seeding) validateResource(resource);
  }

  createResource<T extends Resource>(resource: T, options?: CreateResourceOptions, update = false): Promise<WithId<T>> {
    this.validate(resource);
    return this.ops.run(() => this.writeSync(resource, update));
  }

  updateResource<T extends Resource>(resource: T, options?: UpdateResourceOptions): Promise<WithId<T>> {
    if (!resource.id) throw new OperationOutcomeError(badRequest('Missing id'));
    this.validate(resource);
    return this.ops.run(() => {
      if (options?.ifMatch) {
        const existing = this.row(resource.resourceType, resource.id!);
        if (!existing) throw new OperationOutcomeError(notFound);
        if (existing.version_id !== options.ifMatch) throw new OperationOutcomeError(preconditionFailed);
      }
      return this.writeSync(resource, true);
    });
  }

  async patchResource<T extends Resource>(
    resourceType: T['resourceType'],
    id: string,
    patch: Operation[] | Parameters,
    options?: UpdateResourceOptions,
  ): Promise<WithId<T>> {
    return this.ops.run(async () => {
      const resource = await this.readResource<T>(resourceType, id);
      try {
        if (Array.isArray(patch)) {
          const patchResult = applyPatch(resource, patch).filter(Boolean);
          if (patchResult.length > 0)
            throw new OperationOutcomeError(badRequest(patchResult.map((e) => (e as Error).message).join('\n')));
        } else if (patch.parameter) {
          fhirpathPatchTypedValue(toTypedValue(resource), parseFhirPathPatchParameters(patch));
        }
      } catch (err) {
        throw new OperationOutcomeError(normalizeOperationOutcome(err));
      }
      if (resource.meta) {
        delete resource.meta.versionId;
        delete resource.meta.lastUpdated;
      }
      return this.updateResource(resource, options);
    });
  }

  deleteResource(resourceType: string, id: string, options?: DeleteResourceOptions): Promise<void> {
    return this.ops.run(() => {
      const existing = this.row(resourceType, id);
      if (!existing) throw new OperationOutcomeError(notFound);
      if (options?.ifMatch && existing.version_id !== options.ifMatch)
        throw new OperationOutcomeError(preconditionFailed);
      this.ops.atomic(() => {
        this.record({ interaction: 'delete', resourceType, id, content: this.lastVersionOf(existing.seq) });
        this.keepAsHistory(existing.seq);
        this.unindex(existing.seq);
        this.stmt('DELETE FROM resource WHERE seq = ?').run(existing.seq);
        if (resourceType === 'Binary') this.stmt('DELETE FROM binary_content WHERE id = ?').run(id);
      });
    });
  }

  expungeResource(resourceType: string, id: string): Promise<void> {
    return this.expungeResources(resourceType, [id]);
  }

  expungeResources(resourceType: string, ids: string[]): Promise<void> {
    return this.ops.run(() =>
      this.ops.atomic(() => {
        for (const id of ids) {
          const existing = this.row(resourceType, id);
          if (existing) {
            this.unindex(existing.seq);
            this.stmt('DELETE FROM resource WHERE seq = ?').run(existing.seq);
          }
          this.stmt('DELETE FROM history WHERE type = ? AND id = ?').run(resourceType, id);
        }
      }),
    );
  }

  /**
   * One SQLite transaction around the callback: FhirRouter runs transaction Bundles and conditional writes
   * through here, so a failure anywhere inside (or a crash) leaves none of their writes. Nested calls join the
   * outer transaction.
   */
  withTransaction<TResult>(callback: (repo: this) => Promise<TResult>): Promise<TResult> {
    return this.ops.transaction(() => callback(this));
  }

  /**
   * Runs a whole request (one HTTP request to the sandbox: a read, a search with its includes, a batch, a
   * transaction) as one operation: one turn of the lock, one answer, given once what it wrote or read is committed.
   */
  runAlone<T>(fn: () => Promise<T>): Promise<T> {
    return this.ops.run(fn);
  }

  /**
   * A Binary posted as it is (a file, not FHIR JSON), kept as Medplum keeps one: the resource without `data`, its
   * content beside it (Medplum's binary storage; here a table), so that neither the 1 MB base64Binary limit of
   * validation nor the history holds the file. `id` for a PUT (created when there is none).
   */
  storeBinary(contentType: string, content: Buffer, id?: string): Promise<WithId<Binary>> {
    const binary: Binary = { resourceType: 'Binary', ...(id && { id }), contentType };
    this.validate(binary);
    return this.ops.run(() =>
      this.ops.atomic(() => {
        const stored = this.writeSync(binary, id !== undefined);
        this.stmt('INSERT OR REPLACE INTO binary_content (id, content) VALUES (?, ?)').run(stored.id, content);
        return stored;
      }),
    );
  }

  /** A Binary's content as stored by storeBinary; undefined for one written as FHIR JSON (its `data`) or none. */
  binaryContent(id: string): Buffer | undefined {
    const row = this.stmt('SELECT content FROM binary_content WHERE id = ?').get(id) as
      { content: Uint8Array } | undefined;
    return row && Buffer.from(row.content);
  }

  // ---------------------------------------------------------------- reads

  readResource<T extends Resource>(resourceType: string, id: string): Promise<WithId<T>> {
    return this.ops.run(() => {
      const row = this.stmt('SELECT content FROM resource WHERE type = ? AND id = ?').get(resourceType, id) as
        { content: string } | undefined;
      if (!row) throw new OperationOutcomeError(notFound);
      return JSON.parse(row.content) as WithId<T>;
    });
  }

  readReference<T extends Resource>(reference: Reference<T>): Promise<WithId<T>> {
    const parts = reference.reference?.split('/');
    if (parts?.length !== 2) return Promise.reject(new OperationOutcomeError(badRequest('Invalid reference')));
    return this.readResource(parts[0], parts[1]);
  }

  readReferences<T extends Resource>(references: readonly Reference<T>[]): Promise<(T | OperationOutcomeError)[]> {
    return Promise.all(
      references.map(async (r) =>
        this.readReference<T>(r).catch((err) =>
          err instanceof OperationOutcomeError ? err : new OperationOutcomeError(normalizeOperationOutcome(err)),
        ),
      ),
    );
  }

  /** Newest version first: the current one (in `resource`), then those it superseded. */
  readHistory<T extends Resource>(resourceType: string, id: string): Promise<Bundle<WithId<T>>> {
    return this.ops.run(() => {
      const current = this.stmt('SELECT content FROM resource WHERE type = ? AND id = ?').get(resourceType, id) as
        { content: string } | undefined;
      const kept = this.stmt('SELECT content FROM history WHERE type = ? AND id = ? ORDER BY n DESC').all(
        resourceType,
        id,
      ) as { content: string }[];
      // A deleted resource keeps answering its history, as on Medplum's server: what a deletion removed is read there.
      if (!current && !kept.length) throw new OperationOutcomeError(notFound);
      const rows = current ? [current, ...kept] : kept;
      const entry = rows.map((r) => ({ resource: JSON.parse(r.content) as WithId<T> }));
      return { resourceType: 'Bundle' as const, type: 'history' as const, entry };
    });
  }

  readVersion<T extends Resource>(resourceType: string, id: string, versionId: string): Promise<WithId<T>> {
    return this.ops.run(() => {
      const current = this.stmt('SELECT version_id, content FROM resource WHERE type = ? AND id = ?').get(
        resourceType,
        id,
      ) as { version_id: string; content: string } | undefined;
      if (!current) throw new OperationOutcomeError(notFound);
      const row =
        current.version_id === versionId
          ? current
          : (this.stmt(
              'SELECT content FROM history WHERE type = ? AND id = ? AND version_id = ? ORDER BY n LIMIT 1',
            ).get(resourceType, id, versionId) as { content: string } | undefined);
      if (!row) throw new OperationOutcomeError(notFound);
      return JSON.parse(row.content) as WithId<T>;
    });
  }

  search<T extends Resource>(request: SearchRequest<T>): Promise<Bundle<WithId<T>>> {
    const searchRequest = withMedplumPageSize(request);
    return this.ops.run(async () => {
      const bundle = this.searcher.run(searchRequest);
      if ((searchRequest.include || searchRequest.revInclude) && bundle.entry?.length) {
        const entries = bundle.entry as BundleEntry[];
        await getExtraEntries(
          this,
          searchRequest,
          entries.map((e) => e.resource as WithId<T>),
          entries,
        );
        bundle.entry = entries as BundleEntry<WithId<T>>[];
      }
      return bundle;
    });
  }

  async searchByReference<T extends Resource>(
    searchRequest: SearchRequest<T>,
    referenceField: string,
    references: string[],
  ): Promise<Record<string, WithId<T>[]>> {
    const results: Record<string, WithId<T>[]> = {};
    for (const reference of references) {
      const filters = [
        ...(searchRequest.filters ?? []),
        { code: referenceField, operator: Operator.EQUALS, value: reference },
      ];
      const bundle = await this.search({ ...searchRequest, filters });
      results[reference] = (bundle.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
    }
    return results;
  }

  /**
   * What an operator watches (the /metrics gauges): the database file's and the WAL's size, group commits so far,
   * parameters indexed. Cheap enough for every scrape: no row is counted.
   */
  storageStats(): StoreStats {
    const pragma = (name: string) => (this.stmt(`PRAGMA ${name}`).get() as Record<string, number>)[name];
    const wal = this.location === IN_MEMORY ? undefined : path.join(this.location, `${DB_FILE}-wal`);
    return {
      databaseBytes: pragma('page_count') * pragma('page_size'),
      walBytes: wal && fs.existsSync(wal) ? fs.statSync(wal).size : 0,
      groupCommits: this.ops.groupCommits,
      indexedParameters: this.indexed.size,
      outbox: this.outboxSize(),
    };
  }

  /** When commits reach the disk, as SQLite was told (`synchronous`); `memory` for an in-memory store. */
  sync(): StoreSync | 'memory' {
    if (this.location === IN_MEMORY) return 'memory';
    return (this.stmt('PRAGMA synchronous').get() as { synchronous: number }).synchronous >= 2 ? 'full' : 'normal';
  }

  /** A checked copy of the whole store in `file`, taken while it keeps serving (store-backup.ts). */
  backupTo(file: string, onProgress?: BackupProgress): Promise<StoreBackup> {
    return backupStore(this.db, (fn) => this.ops.alone(fn), file, onProgress);
  }

  /** Counts, for tests and benchmarks. */
  stats(): { resources: number; versions: number; indexRows: number; groupCommits: number } {
    const count = (sql: string) => (this.stmt(sql).get() as { n: number }).n;
    return {
      resources: count('SELECT count(*) AS n FROM resource'),
      versions: count('SELECT count(*) AS n FROM history') + count('SELECT count(*) AS n FROM resource'),
      indexRows: INDEX_TABLES.reduce((sum, table) => sum + count(`SELECT count(*) AS n FROM ${table}`), 0),
      groupCommits: this.ops.groupCommits,
    };
  }

  // ---------------------------------------------------------------- storage and index

  private writeSync<T extends Resource>(resource: T, update: boolean): WithId<T> {
    // Round-trip through JSON, as MemoryRepository does.
    const parsed = JSON.parse(stringify(resource)) as T;
    const result = { ...parsed, id: parsed.id ?? this.generateId(), meta: parsed.meta ?? {} } as WithId<T> & {
      meta: NonNullable<T['meta']>;
    };
    if (!this.seeding) {
      delete result.meta.versionId;
      delete result.meta.lastUpdated;
    }
    result.meta.versionId ??= generateId();
    result.meta.lastUpdated ??= new Date().toISOString();
    const { resourceType, id } = result;
    const existing = this.row(resourceType, id);
    if (!update && existing) throw new OperationOutcomeError(badRequest('Assigned ID is already in use'));

    const rows = indexRowsOf(result, this.indexedParams(resourceType));
    const content = JSON.stringify(result);
    this.ops.atomic(() => {
      let seq: number;
      if (existing) {
        seq = existing.seq;
        this.keepAsHistory(seq);
        this.stmt('UPDATE resource SET version_id = ?, last_updated = ?, content = ? WHERE seq = ?').run(
          result.meta.versionId!,
          result.meta.lastUpdated!,
          content,
          seq,
        );
      } else {
        seq = Number(
          this.stmt('INSERT INTO resource (type, id, version_id, last_updated, content) VALUES (?, ?, ?, ?, ?)').run(
            resourceType,
            id,
            result.meta.versionId!,
            result.meta.lastUpdated!,
            content,
          ).lastInsertRowid,
        );
      }
      if (existing) this.updateIndexRows(seq, rows, resourceType);
      else this.insertIndexRows(seq, rows);
      this.record({ interaction: existing ? 'update' : 'create', resourceType, id, content });
    });
    return result;
  }

  /**
   * The version about to be replaced (or deleted) joins the history. The current version lives only in `resource`:
   * written once, not twice (a create wrote its JSON to both tables, ~1.5 KB and a page apiece at commit).
   */
  private keepAsHistory(seq: number): void {
    this.stmt(
      'INSERT INTO history (type, id, version_id, content) SELECT type, id, version_id, content FROM resource WHERE seq = ?',
    ).run(seq);
  }

  /**
   * A change for those told of commits; in the outbox too (inside the write's savepoint: rolled back with it) when its
   * type is subscribed to.
   */
  private record(change: StoreChange): void {
    if (!this.ops.recording) return;
    if (this.outbox?.(change.resourceType))
      change.outboxId = Number(
        this.stmt('INSERT INTO outbox (change) VALUES (?)').run(JSON.stringify(change)).lastInsertRowid,
      );
    this.ops.record(change);
  }

  /** The changes in the outbox (a previous run's, not yet notified), oldest first. */
  outboxed(): StoreChange[] {
    const rows = this.stmt('SELECT id, change FROM outbox ORDER BY id').all() as { id: number; change: string }[];
    return rows.map((r) => ({ ...(JSON.parse(r.change) as StoreChange), outboxId: Number(r.id) }));
  }

  /** Changes whose notifications were sent or given up: out of the outbox (a write of its own, committed as any). */
  outboxDone(ids: number[]): Promise<void> {
    if (!ids.length || this.closed) return Promise.resolve();
    return this.ops.run(() =>
      this.ops.atomic(() => {
        const remove = this.stmt('DELETE FROM outbox WHERE id = ?');
        for (const id of ids) remove.run(id);
      }),
    );
  }

  /** Rows in the outbox: changes whose notifications are not all sent yet. */
  outboxSize(): number {
    return Number((this.stmt('SELECT count(*) AS n FROM outbox').get() as { n: number }).n);
  }

  /** A deleted resource's last version, for the changes told (read only when someone listens). */
  private lastVersionOf(seq: number): string {
    if (!this.ops.recording) return '';
    return (this.stmt('SELECT content FROM resource WHERE seq = ?').get(seq) as { content: string }).content;
  }

  /** Stores from before keepAsHistory held every current version twice: the copies in `history` go, once. */
  private historyOfSupersededOnly(): void {
    const done = this.stmt("SELECT value FROM meta WHERE key = 'history'").get() as { value: string } | undefined;
    if (done?.value === 'superseded') return;
    this.ops.atomic(() => {
      this.db.exec(
        'DELETE FROM history WHERE EXISTS (SELECT 1 FROM resource r WHERE r.type = history.type AND r.id = history.id ' +
          'AND r.version_id = history.version_id)',
      );
      this.stmt("INSERT OR REPLACE INTO meta (key, value) VALUES ('history', 'superseded')").run();
    });
  }

  private insertIndexRows(seq: number, rows: IndexRows): void {
    this.widenSpans(rows.dates);
    for (const { insert, rowsOf } of VALUE_TABLES) {
      const stmt = this.stmt(insert);
      for (const row of rowsOf(rows)) stmt.run(seq, ...row);
    }
    const absent = this.stmt('INSERT INTO absent (seq, p) VALUES (?, ?)');
    for (const key of rows.absent) absent.run(seq, key);
  }

  /**
   * An update rewrites only the index rows whose values changed (a status change touches one token row, not the
   * ~13 rows of a Task): most of a write's cost is index B-tree pages. A changed row is rewritten in place when the
   * resource had a row of the same parameter (`_lastUpdated` on every update, a status): its (seq, p) index entry
   * and its place in the table stay, where a delete and an insert cost two more pages each (WAL pages per Task status
   * update 21 -> 17, per content-only update 13 -> 11, on a store of 20k Tasks).
   */
  private updateIndexRows(seq: number, rows: IndexRows, resourceType: string): void {
    this.widenSpans(rows.dates);
    // A table can hold rows of this resource only for a kind of parameter its type has indexed.
    const kinds = new Set(this.indexedParams(resourceType).map((p) => p.kind));
    for (const { table, kind, cols, insert: insertSql, rowsOf } of VALUE_TABLES) {
      if (!kinds.has(kind)) continue;
      const next = rowsOf(rows);
      const current = this.stmt(`SELECT rowid AS r, ${cols.join(', ')} FROM ${table} WHERE seq = ?`).all(seq) as Record<
        string,
        string | number | null
      >[];
      // Rows kept as they are: matched value for value (a resource may hold the same values twice).
      const unmatched = new Map<string, { rowid: number; p: string }[]>();
      for (const row of current) {
        const key = JSON.stringify(cols.map((c) => row[c]));
        const rows = unmatched.get(key) ?? [];
        rows.push({ rowid: row.r as number, p: row.p as string });
        unmatched.set(key, rows);
      }
      const fresh = next.filter((values) => !unmatched.get(JSON.stringify(values))?.pop());
      // What is left of the old rows, by parameter: rewritten in place with the fresh values of the same parameter.
      const stale = new Map<string, number[]>();
      for (const rows of unmatched.values())
        for (const { rowid, p } of rows) {
          const ofParam = stale.get(p) ?? [];
          ofParam.push(rowid);
          stale.set(p, ofParam);
        }
      const values = cols.slice(1);
      const rewrite = this.stmt(`UPDATE ${table} SET ${values.map((c) => `${c} = ?`).join(', ')} WHERE rowid = ?`);
      const insert = this.stmt(insertSql);
      for (const [p, ...fields] of fresh) {
        const rowid = stale.get(p!)?.pop();
        if (rowid !== undefined) rewrite.run(...fields, rowid);
        else insert.run(seq, p, ...fields);
      }
      const remove = this.stmt(`DELETE FROM ${table} WHERE rowid = ?`);
      for (const rowids of stale.values()) for (const rowid of rowids) remove.run(rowid);
    }
    if (kinds.has('absent')) this.updateAbsentRows(seq, rows.absent);
  }

  /** The `absent` rows follow the resource: added when it lost a value, removed when it gained one. */
  private updateAbsentRows(seq: number, next: string[]): void {
    const current = (this.stmt('SELECT p FROM absent WHERE seq = ?').all(seq) as { p: string }[]).map((r) => r.p);
    const insert = this.stmt('INSERT INTO absent (seq, p) VALUES (?, ?)');
    for (const key of next) if (!current.includes(key)) insert.run(seq, key);
    const remove = this.stmt('DELETE FROM absent WHERE seq = ? AND p = ?');
    for (const key of current) if (!next.includes(key)) remove.run(seq, key);
  }

  private unindex(seq: number): void {
    for (const table of INDEX_TABLES) this.stmt(`DELETE FROM ${table} WHERE seq = ?`).run(seq);
  }

  /** The token, reference, date and string search parameters of a type, derived once per type. */
  private params(resourceType: string): IndexedParam[] {
    let params = this.paramsByType.get(resourceType);
    if (!params) {
      params = searchParamsOf(resourceType);
      this.paramsByType.set(resourceType, params);
    }
    return params;
  }

  /** The parameters of a type whose index rows are kept (see ensureIndexed). */
  private indexedParams(resourceType: string): IndexedParam[] {
    let params = this.indexedParamsByType.get(resourceType);
    if (!params) {
      params = this.params(resourceType).filter((p) => this.indexed.has(p.key));
      this.indexedParamsByType.set(resourceType, params);
    }
    return params;
  }

  /**
   * A parameter is indexed from its first search on: its rows are built then, over the resources of its type
   * already stored (once: the set of indexed parameters is stored too), and written with every write after. A Task
   * has ~30 token, reference and date parameters, and each index row costs a page of the WAL at commit; the service
   * and a clinic's EHRs search a handful of them, so writes index only what someone searches (the three creates of a
   * follow-up event wrote 45 index rows, now 7). The first search of a parameter nobody searched before pays for the
   * build (about a second per 100k resources of its type here; RavenDB's auto-indexes work the same way).
   */
  private ensureIndexed(resourceType: string, param: IndexedParam): void {
    if (this.indexed.has(param.key)) return;
    const started = performance.now();
    const resources = this.ops.atomic(() => {
      const indexed = this.indexStored(
        this.stmt('SELECT seq, content FROM resource WHERE type = ?').iterate(resourceType),
        [param],
      );
      this.stmt('INSERT INTO indexed_param (p) VALUES (?)').run(param.key);
      return indexed;
    });
    this.indexed.add(param.key);
    this.indexedParamsByType.delete(resourceType);
    this.onIndexBuilt?.({ parameter: param.key, resources, ms: performance.now() - started });
  }

  /**
   * Writes the index rows of stored resources (rows of `seq, content`): for the given parameters, or for each
   * resource's indexed ones. Returns how many resources it read.
   */
  private indexStored(rows: Iterable<unknown>, params?: IndexedParam[]): number {
    let resources = 0;
    for (const { seq, content } of rows as Iterable<{ seq: number; content: string }>) {
      const resource = JSON.parse(content) as Resource;
      this.insertIndexRows(seq, indexRowsOf(resource, params ?? this.indexedParams(resource.resourceType)));
      resources++;
    }
    return resources;
  }

  /** Indexes parameters now instead of on their first search (every token, reference, date and string one by default). */
  indexParameters(resourceType: string, codes?: string[]): Promise<void> {
    return this.ops.run(() => {
      for (const param of this.params(resourceType))
        if (!codes || codes.includes(param.code)) this.ensureIndexed(resourceType, param);
    });
  }

  /**
   * Which parameters are indexed, as stored: read on open, and again after a rollback (a search inside a failed
   * transaction may have built an index the rollback took back).
   */
  private loadIndexedParams(): void {
    this.indexed.clear();
    this.indexedParamsByType.clear();
    for (const row of this.stmt('SELECT p FROM indexed_param').all() as { p: string }[]) this.indexed.add(row.p);
  }

  /**
   * Rebuilds the index from the stored resources when it was written by another index version or other parameter
   * definitions. A store from before on-demand indexing (version 2) starts with no parameter indexed: each is built
   * again on its first search.
   */
  private reindexIfStale(): void {
    const signature = createHash('sha256');
    for (const type of Object.keys(globalSchema.types).sort())
      for (const p of this.params(type)) signature.update(`${p.key} ${p.kind} ${p.expression} ${p.matchesBareId}\n`);
    const version = `${INDEX_VERSION}/${signature.digest('hex').slice(0, 16)}`;
    const row = this.stmt("SELECT value FROM meta WHERE key = 'index_version'").get() as { value: string } | undefined;
    if (row?.value === version) return;
    this.ops.atomic(() => {
      this.db.exec(CLEAR_INDEX);
      // Parameters that no longer exist are forgotten; the others' rows are computed again.
      for (const key of this.indexed) {
        const [type, code] = key.split(':');
        if (!this.params(type).some((p) => p.code === code))
          this.stmt('DELETE FROM indexed_param WHERE p = ?').run(key);
      }
      this.loadIndexedParams();
      this.indexStored(this.stmt('SELECT seq, content FROM resource').iterate());
      this.stmt("INSERT OR REPLACE INTO meta (key, value) VALUES ('index_version', ?)").run(version);
    });
  }

  /**
   * The most any index row of a date parameter spans (`hi - lo`, ms), or more: a walk of the parameter's index seeks
   * to its filters' lower bounds less this (date-sort.ts). Read over the parameter's rows on first use, then kept by
   * every write; never narrowed by a delete or a rollback, which leaves it wider than it need be, never narrower.
   */
  maxSpanMs(key: string): number {
    let span = this.spans.get(key);
    if (span === undefined) {
      // Open bounds (search-index.ts OPEN_LO, OPEN_HI) span without end; julianday() reads the other, ISO, bounds.
      const row = this.stmt(
        'SELECT max(CASE WHEN lo = ? OR hi = ? THEN 1e300 ' +
          'ELSE (julianday(hi) - julianday(lo)) * 86400000.0 END) AS span FROM date WHERE p = ?',
      ).get(OPEN_LO, OPEN_HI, key) as { span: number | null };
      // julianday's double loses up to ~0.1 ms at today's dates: a millisecond more keeps the bound on the safe side.
      span = row.span === null ? 0 : row.span >= 1e300 ? Infinity : Math.ceil(row.span) + 1;
      this.spans.set(key, span);
    }
    return span;
  }

  private widenSpans(dates: IndexRows['dates']): void {
    for (const [key, lo, hi] of dates) {
      const known = this.spans.get(key);
      if (known === undefined) continue;
      const span = lo === OPEN_LO || hi === OPEN_HI ? Infinity : Date.parse(hi) - Date.parse(lo);
      if (!(span <= known)) this.spans.set(key, Number.isNaN(span) ? Infinity : span);
    }
  }

  private row(resourceType: string, id: string): { seq: number; version_id: string } | undefined {
    return this.stmt('SELECT seq, version_id FROM resource WHERE type = ? AND id = ?').get(resourceType, id) as
      { seq: number; version_id: string } | undefined;
  }

  private stmt(sql: string): StatementSync {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /** Runs synchronous writes atomically: their own transaction, or a savepoint inside the current one. */
}
