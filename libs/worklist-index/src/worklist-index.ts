import type { CarePlan, Resource, Task } from '@medplum/fhirtypes';
import type { Redis } from 'ioredis';
import type { FhirClient } from '@kc/fhir';
import {
  carePlanOf,
  isOverdue,
  memberOf,
  onWorklist,
  parseMember,
  protocolOf,
  startBound,
  toEntry,
  type ParsedMember,
  type WorklistEntry,
} from './worklist-entry';

export interface WorklistIndexQuery {
  patient?: string;
  /** A protocol canonical, with or without |version. */
  protocol?: string;
  dueBefore?: Date;
  dueAfter?: Date;
  overdue?: boolean;
  count: number;
  /** The member of the last entry of the previous page (opaque to clients, see encodeCursor). */
  after?: string;
}

export interface WorklistIndexPage {
  total: number;
  items: (WorklistEntry & { overdue: boolean })[];
  /** Where the next page starts, when there is one. */
  next?: string;
}

interface StoredEntry {
  m: string;
  pt?: string;
  pr?: string;
  e: WorklistEntry;
}

/**
 * Upsert or remove one entry, only when the write is not older than what the index already saw of this Task
 * (meta.lastUpdated, kept per Task in `ver` also after removal): a slow rebuild never resurrects a Task a
 * clinician just approved, and writes applied twice change nothing.
 * ARGV: key prefix, id, lastUpdated ms, 'put'|'del', member, patient, protocol url, entry JSON.
 */
const APPLY_SCRIPT = `
local p = ARGV[1]
local id = ARGV[2]
local ts = tonumber(ARGV[3])
local seen = redis.call('HGET', p .. 'ver', id)
if seen and tonumber(seen) > ts then return 0 end
local old = redis.call('HGET', p .. 'item', id)
if old then
  local o = cjson.decode(old)
  redis.call('ZREM', p .. 'all', o.m)
  if o.pt then redis.call('ZREM', p .. 'pt:' .. o.pt, o.m) end
  if o.pr then redis.call('ZREM', p .. 'pr:' .. o.pr, o.m) end
  redis.call('HDEL', p .. 'item', id)
end
redis.call('HSET', p .. 'ver', id, ARGV[3])
if ARGV[4] == 'put' then
  local m = ARGV[5]
  redis.call('ZADD', p .. 'all', 0, m)
  if ARGV[6] ~= '' then redis.call('ZADD', p .. 'pt:' .. ARGV[6], 0, m) end
  if ARGV[7] ~= '' then redis.call('ZADD', p .. 'pr:' .. ARGV[7], 0, m) end
  redis.call('HSET', p .. 'item', id, ARGV[8])
end
return 1
`;

/**
 * Counts the members of a lex range that pass the due-after and overdue filters, inside Redis: a total over
 * 20,000 entries without sending them to the service. Members are fixed-width up to the id (see memberOf):
 * characters 15-27 are the due end, the last one the overdue flag.
 * ARGV: set key, min, max, due-after ms or '', overdue '1' | '0' | '', now ms.
 */
const COUNT_SCRIPT = `
local members = redis.call('ZRANGEBYLEX', ARGV[1], ARGV[2], ARGV[3])
local dueAfter = tonumber(ARGV[4])
local overdue = ARGV[5]
local now = tonumber(ARGV[6])
local n = 0
for i = 1, #members do
  local m = members[i]
  local e = string.sub(m, 15, 27)
  local finish = nil
  if e ~= 'zzzzzzzzzzzzz' then finish = tonumber(e) end
  local ok = true
  if dueAfter and not (finish and finish >= dueAfter) then ok = false end
  if ok and overdue ~= '' then
    local late = string.sub(m, -1) == '1' or (finish ~= nil and finish < now)
    if (overdue == '1') ~= late then ok = false end
  end
  if ok then n = n + 1 end
end
return n
`;

const CHUNK = 200;

/**
 * The worklist's read model: Tasks awaiting approval in Redis sorted sets ordered by due window (Task has no
 * search parameter for restriction.period, so no FHIR server can page them in due order). Shared by every
 * replica through Redis; the service keeps no worklist state in process.
 *
 * Keys under `<prefix>:worklist:`: `all` (every entry), `pt:<patient id>` and `pr:<protocol url>` (the same
 * members, per patient and per protocol), `item` (id -> entry JSON), `carePlan` (CarePlan id -> protocol
 * canonical), `ver` (id -> the lastUpdated the index last applied), `built` (time of the last full rebuild).
 *
 * Consistency with the FHIR server: every write this service makes goes through FhirClient, which tells the
 * index what was written (record(), awaited before the write returns: a clinician sees their decision at once);
 * rebuild() re-reads every draft Task from the FHIR server at start and periodically (reconciliation, for
 * writes made by others, e.g. an EHR, and for any update lost to a Redis hiccup).
 */
export class WorklistIndex {
  private readonly p: string;

  constructor(
    private readonly redis: Redis,
    private readonly fhir: FhirClient,
    prefix: string,
  ) {
    this.p = `${prefix}:worklist:`;
    redis.defineCommand('kcWorklistApply', { numberOfKeys: 0, lua: APPLY_SCRIPT });
    redis.defineCommand('kcWorklistCount', { numberOfKeys: 0, lua: COUNT_SCRIPT });
  }

  /** The FhirClient write listener: Tasks and CarePlans a write returned. */
  async record(written: Resource[], locations: string[] = []): Promise<void> {
    const carePlans = written.filter((r): r is CarePlan => r.resourceType === 'CarePlan');
    const protocols = carePlans.flatMap((c) =>
      c.id && protocolOf(c) ? [[c.id, protocolOf(c)!] as [string, string]] : [],
    );
    if (protocols.length) await this.redis.hset(`${this.p}carePlan`, Object.fromEntries(protocols));
    const tasks = written.filter((r): r is Task => r.resourceType === 'Task');
    // A server that answered a transaction without bodies: read those Tasks back (one search).
    const unread = locations.map((l) => /(?:^|\/)Task\/([^/]+)/.exec(l)?.[1]).filter((id): id is string => !!id);
    if (unread.length)
      tasks.push(...(await this.fhir.searchAll<Task>('Task', { _id: unread.join(','), _count: unread.length })));
    if (tasks.length) await this.apply(tasks);
  }

  /** Applies Tasks as read or written (each with its lastUpdated); not on the worklist -> removed. */
  async apply(tasks: Task[]): Promise<void> {
    const protocols = await this.protocolsFor(tasks.filter(onWorklist));
    const pipeline = this.redis.pipeline();
    for (const task of tasks) {
      if (!task.id) continue;
      const ts = Date.parse(task.meta?.lastUpdated ?? '') || Date.now();
      if (!onWorklist(task)) {
        this.applyCommand(pipeline, task.id, ts, 'del');
        continue;
      }
      const protocol = protocols.get(carePlanOf(task) ?? '');
      const stored: StoredEntry = {
        m: memberOf(task),
        pt: /^Patient\/([^/]+)$/.exec(task.for?.reference ?? '')?.[1],
        pr: protocol?.split('|')[0],
        e: toEntry(task, protocol),
      };
      this.applyCommand(pipeline, task.id, ts, 'put', stored);
    }
    await execOrThrow(pipeline);
  }

  /**
   * Re-reads every Task awaiting approval from the FHIR server and makes the index match: adds and updates what
   * it finds, removes what is no longer there, never overriding a newer write recorded meanwhile.
   */
  async rebuild(): Promise<{ tasks: number; removed: number; ms: number }> {
    const started = Date.now();
    const drafts = await this.fhir.searchAll<Task>('Task', { status: 'draft', _count: 1000 });
    for (let i = 0; i < drafts.length; i += 1000) await this.apply(drafts.slice(i, i + 1000));
    const seen = new Set(drafts.map((t) => t.id));
    const indexed = await this.redis.hkeys(`${this.p}item`);
    const gone = indexed.filter((id) => !seen.has(id));
    // Removed with the rebuild's start time: a Task written to the worklist after it started stays.
    const pipeline = this.redis.pipeline();
    for (const id of gone) this.applyCommand(pipeline, id, started, 'del');
    await execOrThrow(pipeline);
    await this.redis.set(`${this.p}built`, String(Date.now()));
    return { tasks: drafts.length, removed: gone.length, ms: Date.now() - started };
  }

  /** Runs fn under a short Redis lock, so of several replicas one reconciles at a time; false if another holds it. */
  async exclusively(name: string, ttlMs: number, fn: () => Promise<unknown>): Promise<boolean> {
    const key = `${this.p}lock:${name}`;
    const token = `${process.pid}:${Math.random()}`;
    if ((await this.redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') return false;
    try {
      await fn();
    } finally {
      if ((await this.redis.get(key)) === token) await this.redis.del(key);
    }
    return true;
  }

  async lastRebuild(): Promise<number | undefined> {
    const value = await this.redis.get(`${this.p}built`);
    return value ? Number(value) : undefined;
  }

  /** One page of the worklist, soonest due first, with the exact total of what matches. */
  async query(q: WorklistIndexQuery, now = new Date()): Promise<WorklistIndexPage> {
    const protocolUrl = q.protocol?.split('|')[0];
    const exactProtocol = q.protocol?.includes('|') ? q.protocol : undefined;
    const set = this.p + (q.patient ? `pt:${q.patient}` : protocolUrl ? `pr:${protocolUrl}` : 'all');
    // Filters the member decides (due after, overdue); the protocol needs the entry when the set is a patient's.
    const byMember = (m: ParsedMember) =>
      (!q.dueAfter || (m.end !== undefined && m.end >= q.dueAfter.getTime())) &&
      (q.overdue === undefined || isOverdue(m, now) === q.overdue);
    const entryFilter =
      exactProtocol || (q.patient && protocolUrl)
        ? (s: StoredEntry) => (exactProtocol ? s.e.protocol === exactProtocol : s.pr === protocolUrl)
        : undefined;
    const max = q.dueBefore ? `(${startBound(q.dueBefore)}` : '+';

    const items: WorklistIndexPage['items'] = [];
    let min = q.after ? `(${q.after}` : '-';
    let lastMember: string | undefined;
    let hasMore = false;
    while (!hasMore) {
      const members = await this.redis.zrangebylex(set, min, max, 'LIMIT', 0, CHUNK);
      if (!members.length) break;
      min = `(${members[members.length - 1]}`;
      const candidates = members.filter((m) => {
        const parsed = parseMember(m);
        return parsed !== undefined && byMember(parsed);
      });
      const stored = await this.entries(candidates);
      for (const [i, s] of stored.entries()) {
        if (!s || (entryFilter && !entryFilter(s))) continue;
        if (items.length === q.count) {
          hasMore = true;
          break;
        }
        items.push({ ...s.e, overdue: isOverdue(parseMember(candidates[i])!, now) });
        lastMember = candidates[i];
      }
      if (members.length < CHUNK) break;
    }
    const total = await this.total(set, max, byMember, entryFilter, q, now);
    return { total, items, next: hasMore ? lastMember : undefined };
  }

  private async total(
    set: string,
    max: string,
    byMember: (m: ParsedMember) => boolean,
    entryFilter: ((s: StoredEntry) => boolean) | undefined,
    q: WorklistIndexQuery,
    now: Date,
  ): Promise<number> {
    if (!q.dueAfter && q.overdue === undefined && !entryFilter) return this.redis.zlexcount(set, '-', max);
    if (!entryFilter) {
      const count = (this.redis as unknown as Record<string, (...args: string[]) => Promise<number>>).kcWorklistCount;
      return count.call(
        this.redis,
        set,
        '-',
        max,
        q.dueAfter ? String(q.dueAfter.getTime()) : '',
        q.overdue === undefined ? '' : q.overdue ? '1' : '0',
        String(now.getTime()),
      );
    }
    const members = (await this.redis.zrangebylex(set, '-', max)).filter((m) => {
      const parsed = parseMember(m);
      return parsed !== undefined && byMember(parsed);
    });
    if (!entryFilter) return members.length;
    let total = 0;
    for (let i = 0; i < members.length; i += 1000)
      total += (await this.entries(members.slice(i, i + 1000))).filter((s) => s && entryFilter(s)).length;
    return total;
  }

  private async entries(members: string[]): Promise<(StoredEntry | undefined)[]> {
    if (!members.length) return [];
    const ids = members.map((m) => parseMember(m)!.id);
    const raw = await this.redis.hmget(`${this.p}item`, ...ids);
    // An entry whose member changed between the two reads is skipped (it is listed under its new member).
    return raw.map((r, i) => {
      const parsed = r ? (JSON.parse(r) as StoredEntry) : undefined;
      return parsed?.m === members[i] ? parsed : undefined;
    });
  }

  /** CarePlan id -> protocol canonical: from the index's map, else one search for the unknown CarePlans. */
  private async protocolsFor(tasks: Task[]): Promise<Map<string, string>> {
    const ids = [...new Set(tasks.map(carePlanOf).filter((id): id is string => !!id))];
    const result = new Map<string, string>();
    if (!ids.length) return result;
    const known = await this.redis.hmget(`${this.p}carePlan`, ...ids);
    const unknown = ids.filter((id, i) => (known[i] ? (result.set(id, known[i]), false) : true));
    for (let i = 0; i < unknown.length; i += 100) {
      const chunk = unknown.slice(i, i + 100);
      const plans = await this.fhir.searchAll<CarePlan>('CarePlan', { _id: chunk.join(','), _count: 100 });
      const found = plans.flatMap((c) => (c.id && protocolOf(c) ? [[c.id, protocolOf(c)!] as const] : []));
      for (const [id, protocol] of found) result.set(id, protocol);
      if (found.length) await this.redis.hset(`${this.p}carePlan`, Object.fromEntries(found));
    }
    return result;
  }

  private applyCommand(
    pipeline: ReturnType<Redis['pipeline']>,
    id: string,
    ts: number,
    op: 'put' | 'del',
    stored?: StoredEntry,
  ): void {
    (pipeline as unknown as Record<string, (...args: string[]) => void>).kcWorklistApply(
      this.p,
      id,
      String(ts),
      op,
      stored?.m ?? '',
      stored?.pt ?? '',
      stored?.pr ?? '',
      stored ? JSON.stringify(stored) : '',
    );
  }
}

async function execOrThrow(pipeline: ReturnType<Redis['pipeline']>): Promise<void> {
  const results = await pipeline.exec();
  const failed = results?.find(([err]) => err);
  if (failed) throw failed[0] instanceof Error ? failed[0] : new Error(String(failed[0]));
}

/** Cursors are opaque to clients: the last member, base64url. */
export function encodeCursor(member: string): string {
  return Buffer.from(member, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string | undefined {
  const member = Buffer.from(cursor, 'base64url').toString('utf8');
  return parseMember(member) ? member : undefined;
}
