import type { CarePlan, Resource, Task } from '@medplum/fhirtypes';
import type { Redis } from 'ioredis';
import type { FhirClient } from '@kc/fhir';
import { patientIdOf } from '@kc/task-states';
import {
  AWAITING_DECISION,
  carePlanOf,
  isOverdue,
  kindOf,
  ownerOf,
  UNASSIGNED,
  memberOf,
  TO_DO,
  type TaskList,
  parseMember,
  protocolOf,
  startBound,
  toEntry,
  type ParsedMember,
  type WorklistEntry,
} from './worklist-entry';

export interface WorklistIndexQuery {
  patient?: string;
  /** Any of these patients (ids): those a name matches. Not with `patient`. */
  patients?: readonly string[];
  /** A protocol canonical, with or without |version. */
  protocol?: string;
  /** The Task's kind (Task.code), e.g. post-infusion-check. */
  kind?: string;
  /** Whose it is (Task.owner): a reference such as Practitioner/123, or UNASSIGNED for Tasks with no owner. */
  owner?: string;
  dueBefore?: Date;
  dueAfter?: Date;
  overdue?: boolean;
  count: number;
  /** The member of the last entry of the previous page (opaque to clients, see encodeCursor). */
  after?: string;
}

/** How many listed Tasks one owner has (`owner` a reference, or UNASSIGNED), named as the Tasks name them. */
export interface OwnerCount {
  owner: string;
  count: number;
  display?: string;
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
  kd?: string;
  /** Task.owner's reference, or UNASSIGNED. */
  ow?: string;
  e: WorklistEntry;
}

/**
 * Upsert or remove one entry, only when the write is not older than what the index already saw of this Task
 * (meta.lastUpdated, kept per Task in `ver` also after removal): a slow rebuild never resurrects a Task a
 * clinician just approved, and writes applied twice change nothing. Each sorted set (`all`, `pt:<id>`, `pr:<url>`,
 * `kd:<kind>`, `ow:<owner>`) has a `sp:` twin holding its special members (flagged overdue, or without a start or an
 * end), and `w` keeps the longest due window of the others: what PAGE_SCRIPT needs to decide most of a range without
 * reading it.
 * ARGV: key prefix, id, lastUpdated ms, 'put'|'del', member, patient, protocol url, entry JSON, kind, owner.
 */
const APPLY_SCRIPT = `
local p = ARGV[1]
local id = ARGV[2]
local ts = tonumber(ARGV[3])
local seen = redis.call('HGET', p .. 'ver', id)
if seen and tonumber(seen) > ts then return 0 end
local function sets(pt, pr, kd, ow)
  local out = { 'all' }
  if pt and pt ~= '' then out[#out + 1] = 'pt:' .. pt end
  if pr and pr ~= '' then out[#out + 1] = 'pr:' .. pr end
  if kd and kd ~= '' then out[#out + 1] = 'kd:' .. kd end
  if ow and ow ~= '' then out[#out + 1] = 'ow:' .. ow end
  return out
end
local old = redis.call('HGET', p .. 'item', id)
if old then
  local o = cjson.decode(old)
  for _, k in ipairs(sets(o.pt, o.pr, o.kd, o.ow)) do
    redis.call('ZREM', p .. k, o.m)
    redis.call('ZREM', p .. 'sp:' .. k, o.m)
  end
  redis.call('HDEL', p .. 'item', id)
end
redis.call('HSET', p .. 'ver', id, ARGV[3])
if ARGV[4] == 'put' then
  local m = ARGV[5]
  local start, finish = string.sub(m, 1, 13), string.sub(m, 15, 27)
  local special = string.sub(m, -1) == '1' or start == 'zzzzzzzzzzzzz' or finish == 'zzzzzzzzzzzzz'
  if not special then
    local width = tonumber(finish) - tonumber(start)
    local w = tonumber(redis.call('HGET', p .. 'meta', 'w') or '0')
    if width > w then redis.call('HSET', p .. 'meta', 'w', tostring(width)) end
  end
  for _, k in ipairs(sets(ARGV[6], ARGV[7], ARGV[9], ARGV[10])) do
    redis.call('ZADD', p .. k, 0, m)
    if special then redis.call('ZADD', p .. 'sp:' .. k, 0, m) end
  end
  redis.call('HSET', p .. 'item', id, ARGV[8])
end
return 1
`;

/**
 * One worklist page in one round trip, inside Redis: the first `count` (+1, to know whether there is more) members
 * after the cursor that pass the filters, their entries, and the exact total. Members are
 * `<start>|<end>|<id>|<flag>` (memberOf), sorted by start. With a due-after (A) or overdue filter the range is read
 * in three parts by start instead of member by member: W being the longest window of the regular members (`meta` w),
 * a regular member starting before min(A, now) - W has ended before A and before now (pass or fail decided for all
 * of them at once), one starting at or after max(A, now) is neither late nor ended before A (decided too), and only
 * the part between is read. Special members (flagged, or with a missing instant) are kept in the `sp:` twin set and
 * always looked at one by one. Bounds are compared as numbers, never as strings (Lua compares strings by locale).
 * ARGV: prefix, set name, cursor member or '', due-before start bound (ms, exclusive) or '', due-after ms or '',
 * overdue '1' | '0' | '', now ms, count. Returns { total, { members... }, { entry JSON or false... } }.
 */
const PAGE_SCRIPT = `
local p, name, after = ARGV[1], ARGV[2], ARGV[3]
local set, sp = p .. name, p .. 'sp:' .. name
local before = tonumber(ARGV[4])
local dueAfter = tonumber(ARGV[5])
local overdue = ARGV[6]
local now = tonumber(ARGV[7])
local want = tonumber(ARGV[8]) + 1
local INF = 1e300
local function pad(n) return string.format('%013d', n) end
local function startOf(m)
  local s = string.sub(m, 1, 13)
  if s == 'zzzzzzzzzzzzz' then return INF end
  return tonumber(s)
end
local function passes(m)
  local e = string.sub(m, 15, 27)
  local finish = nil
  if e ~= 'zzzzzzzzzzzzz' then finish = tonumber(e) end
  if dueAfter and not (finish and finish >= dueAfter) then return false end
  if overdue ~= '' then
    local late = string.sub(m, -1) == '1' or (finish ~= nil and finish < now)
    if (overdue == '1') ~= late then return false end
  end
  return true
end
-- Lex bounds of [lo, hi) by start, within the query's range (start < before) and, for the page, after the cursor
-- (cursor: the cursor's start, or nil for the total): nil when empty.
local cursorStart = nil
if after ~= '' then cursorStart = startOf(after) end
local upper = before or INF
local function bounds(lo, hi, cursor)
  if hi > upper then hi = upper end
  if lo >= hi then return nil end
  if cursor and hi < INF and cursor >= hi then return nil end
  local min = '-'
  if cursor and cursor >= lo then min = '(' .. after elseif lo > -INF then min = '[' .. pad(lo) end
  local max = '+'
  if hi < INF then max = '(' .. pad(hi) end
  return min, max
end
local page, total = {}, 0
local function collect(key, min, max)
  while #page < want do
    local chunk = redis.call('ZRANGEBYLEX', key, min, max, 'LIMIT', 0, 500)
    for i = 1, #chunk do
      if #page < want and passes(chunk[i]) then page[#page + 1] = chunk[i] end
    end
    if #chunk < 500 then return end
    min = '(' .. chunk[#chunk]
  end
end
local function countPassing(key, min, max)
  local n = 0
  local members = redis.call('ZRANGEBYLEX', key, min, max)
  for i = 1, #members do if passes(members[i]) then n = n + 1 end end
  return n
end
if dueAfter == nil and overdue == '' then
  local min, max = bounds(-INF, INF, cursorStart)
  if min then page = redis.call('ZRANGEBYLEX', set, min, max, 'LIMIT', 0, want) end
  local top = '+'
  if before then top = '(' .. pad(before) end
  total = redis.call('ZLEXCOUNT', set, '-', top)
else
  local w = tonumber(redis.call('HGET', p .. 'meta', 'w') or '')
  -- Regular members before s1 pass only without due-after and unless asking for not-overdue; from s2 on, only
  -- when not asking for overdue. Without w (nothing regular indexed yet) everything is read.
  local parts = { { -INF, INF, nil } }
  if w then
    local s1 = math.min(dueAfter or now, now) - w
    local s2 = math.max(dueAfter or now, now)
    parts = { { -INF, s1, dueAfter == nil and overdue ~= '0' }, { s1, s2, nil }, { s2, INF, overdue ~= '1' } }
  end
  for _, part in ipairs(parts) do
    local lo, hi, decided = part[1], part[2], part[3]
    if lo < hi then
      -- Totals over the whole filtered range (the cursor only moves the page).
      local tmin, tmax = bounds(lo, hi, nil)
      if tmin then
        if decided == nil then
          total = total + countPassing(set, tmin, tmax)
        else
          if decided then
            total = total + redis.call('ZLEXCOUNT', set, tmin, tmax) - redis.call('ZLEXCOUNT', sp, tmin, tmax)
          end
          total = total + countPassing(sp, tmin, tmax)
        end
      end
      local pmin, pmax = bounds(lo, hi, cursorStart)
      if pmin and #page < want then
        if decided == false then collect(sp, pmin, pmax) else collect(set, pmin, pmax) end
      end
    end
  end
end
local items = {}
if #page > 0 then
  local ids = {}
  for i = 1, #page do ids[i] = string.sub(page[i], 29, #page[i] - 2) end
  items = redis.call('HMGET', p .. 'item', unpack(ids))
end
return { total, page, items }
`;

/**
 * CarePlan -> protocol as this process has seen it (keyed by the index's map, then the CarePlan id): a CarePlan never
 * changes protocol, so a copy cannot go stale and replicas need not share it (the Redis map is the shared one). It
 * saves an approval the lookup of its plan's protocol for the to-do list. Bounded: past the limit the oldest go.
 */
class SeenProtocols {
  private readonly seen = new Map<string, string>();
  constructor(private readonly limit: number) {}

  get(key: string): string | undefined {
    return this.seen.get(key);
  }

  set(key: string, protocol: string): void {
    if (this.seen.has(key)) return;
    if (this.seen.size >= this.limit) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(key, protocol);
  }
}
const PROTOCOLS_SEEN = new SeenProtocols(100_000);

/** How far ahead of this clock a notified Task's `meta.lastUpdated` may be and still be applied as sent. */
const NOTIFIED_CLOCK_SKEW_MS = 60_000;

/** Every key of the task lists' indexes (the worklist's, and the to-do list's under `to-do:`) starts with this. */
function worklistKeys(prefix: string): string {
  return `${prefix}:worklist:`;
}

/**
 * Deletes the whole worklist index and the to-do list's (entries, versions, the `built` marks): after the FHIR store
 * was restored from a backup, its Tasks are older than the versions the index last applied, which a rebuild would
 * never override. The next start finds no index and rebuilds it from the store. Returns the number of keys deleted.
 */
export async function dropWorklistIndex(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  const batches = redis.scanStream({ match: `${worklistKeys(prefix)}*`, count: 1000 }) as AsyncIterable<string[]>;
  for await (const keys of batches) if (keys.length) deleted += await redis.del(...keys);
  return deleted;
}

/**
 * The worklist's read model: Tasks awaiting approval (or, given TO_DO, the approved ones still to be done) in Redis
 * sorted sets ordered by due window (Task has no search parameter for restriction.period, so no FHIR server can
 * page them in due order). Shared by every replica through Redis; the service keeps no worklist state in process
 * (only a cache of CarePlan protocols, which never change: SeenProtocols).
 *
 * Keys under `<prefix>:worklist:<list keySpace>`: `all` (every entry), `pt:<patient id>`, `pr:<protocol url>`,
 * `kd:<kind>` and `ow:<owner>` (the same members, per patient, per protocol, per kind of Task and per owner, `ow:-`
 * for Tasks nobody owns), `item` (id -> entry JSON),
 * `ver` (id -> the lastUpdated the index last applied), `built` (time of the last full rebuild); and, shared by
 * every list, `<prefix>:worklist:carePlan` (CarePlan id -> protocol canonical).
 *
 * Consistency with the FHIR server: every write this service makes goes through FhirClient, which tells the
 * index what was written (record(), awaited before the write returns: a clinician sees their decision at once);
 * refresh() takes the Tasks a FHIR Subscription notifies (others' writes, at once); rebuild() re-reads every draft
 * Task from the FHIR server at start and periodically (reconciliation, for writes made by others without a
 * notification, e.g. on the embedded store, and for any update lost to a Redis hiccup).
 */
export class WorklistIndex {
  private readonly p: string;
  /** CarePlan id -> protocol canonical (CarePlans never change protocol): one map for every list, the worklist's. */
  private readonly carePlans: string;

  constructor(
    private readonly redis: Redis,
    private readonly fhir: FhirClient,
    prefix: string,
    private readonly list: TaskList = AWAITING_DECISION,
  ) {
    this.p = worklistKeys(prefix) + list.keySpace;
    this.carePlans = `${worklistKeys(prefix)}carePlan`;
    redis.defineCommand('kcWorklistApply', { numberOfKeys: 0, lua: APPLY_SCRIPT });
    redis.defineCommand('kcWorklistPage', { numberOfKeys: 0, lua: PAGE_SCRIPT });
  }

  /**
   * The FhirClient write listener: Tasks and CarePlans a write returned. One Redis round trip when the write holds
   * the Tasks' CarePlans or the index knows them (a follow-up transaction holds its CarePlan): the CarePlans'
   * protocols and the Tasks' entries go in one pipeline (recordOnLists: one for every list).
   */
  record(written: Resource[], locations: string[] = []): Promise<void> {
    return recordOnLists(this.redis, [this], written, locations);
  }

  /** The Tasks a write returned, and those it only named (a server answering without bodies: read back). */
  async tasksWritten(written: Resource[], locations: string[]): Promise<Task[]> {
    const tasks = written.filter((r): r is Task => r.resourceType === 'Task');
    // A search per 100.
    const unread = locations.map((l) => /(?:^|\/)Task\/([^/]+)/.exec(l)?.[1]).filter((id): id is string => !!id);
    if (unread.length) tasks.push(...(await this.readByIds<Task>('Task', unread)));
    return tasks;
  }

  /**
   * Queues a write's CarePlans' protocols (CarePlan id -> canonical) on a pipeline, in the map every list shares:
   * once per write, whatever the number of lists.
   */
  rememberProtocols(pipeline: ReturnType<Redis['pipeline']>, protocols: Map<string, string>): void {
    if (protocols.size) pipeline.hset(this.carePlans, Object.fromEntries(protocols));
    for (const [id, protocol] of protocols) PROTOCOLS_SEEN.set(`${this.carePlans}|${id}`, protocol);
  }

  /** Queues this list's changes for a write's Tasks on a pipeline (`protocols`: the CarePlans written with them). */
  async recordIn(
    pipeline: ReturnType<Redis['pipeline']>,
    tasks: Task[],
    protocols: Map<string, string>,
  ): Promise<void> {
    if (tasks.length) await this.applyIn(pipeline, tasks, protocols);
  }

  /** Applies Tasks as read or written (each with its lastUpdated); not on this list -> removed. */
  async apply(tasks: Task[]): Promise<void> {
    const pipeline = this.redis.pipeline();
    await this.applyIn(pipeline, tasks, new Map());
    await execOrThrow(pipeline);
  }

  private async applyIn(
    pipeline: ReturnType<Redis['pipeline']>,
    tasks: Task[],
    written: Map<string, string>,
  ): Promise<void> {
    const protocols = await this.protocolsFor(tasks.filter(this.list.includes), written);
    for (const task of tasks) {
      if (!task.id) continue;
      const ts = Date.parse(task.meta?.lastUpdated ?? '') || Date.now();
      if (!this.list.includes(task)) {
        this.applyCommand(pipeline, task.id, ts, 'del');
        continue;
      }
      const protocol = protocols.get(carePlanOf(task) ?? '');
      const stored: StoredEntry = {
        m: memberOf(task),
        pt: patientIdOf(task),
        pr: protocol?.split('|')[0],
        kd: kindOf(task),
        ow: ownerOf(task) ?? UNASSIGNED,
        e: toEntry(task, protocol),
      };
      this.applyCommand(pipeline, task.id, ts, 'put', stored);
    }
  }

  /**
   * Tasks the FHIR server says changed (a Subscription notification: someone else, an EHR, wrote them). A notified
   * Task with its `meta.lastUpdated` is applied as sent (a newer write already applied wins, as always); an id alone,
   * or a Task without it or stamped in the future, is read back first, and one the server no longer has leaves the
   * worklist.
   */
  refresh(notified: (Task | string)[]): Promise<{ applied: number; removed: number }> {
    return WorklistIndex.refreshAll([this], notified);
  }

  /**
   * refresh() on several lists (the worklist and the to-do list): what needs reading is read once, and the lists
   * are written in one Redis round trip.
   */
  static async refreshAll(
    lists: WorklistIndex[],
    notified: (Task | string)[],
  ): Promise<{ applied: number; removed: number }> {
    if (!lists.length) return { applied: 0, removed: 0 };
    // A version stamped in the future (a clock or a forged body) would outrank every real write: read it back instead.
    const latest = Date.now() + NOTIFIED_CLOCK_SKEW_MS;
    const complete = notified.filter(
      (t): t is Task => typeof t !== 'string' && !!t.id && Date.parse(t.meta?.lastUpdated ?? '') <= latest,
    );
    const ids = [
      ...new Set(
        notified
          .filter((t) => typeof t === 'string' || !complete.includes(t))
          .map((t) => (typeof t === 'string' ? t : t.id!)),
      ),
    ];
    const read = ids.length ? await lists[0].readByIds<Task>('Task', ids) : [];
    const found = new Set(read.map((t) => t.id));
    const gone = ids.filter((id) => !found.has(id));
    const pipeline = lists[0].redis.pipeline();
    for (const list of lists) {
      await list.applyIn(pipeline, [...complete, ...read], new Map());
      for (const id of gone) list.applyCommand(pipeline, id, Date.now(), 'del');
    }
    if (pipeline.length) await execOrThrow(pipeline);
    return { applied: complete.length + read.length, removed: gone.length };
  }

  /**
   * Re-reads every Task of this list from the FHIR server and makes the index match: adds and updates what
   * it finds, removes what is no longer there, never overriding a newer write recorded meanwhile.
   */
  async rebuild(): Promise<{ tasks: number; removed: number; ms: number }> {
    const started = Date.now();
    // By `_lastUpdated`: Medplum's server pages that by cursor, to any depth, where `_offset` stops at 10,000.
    // The worklist's held Tasks too (on-hold: only this service's holds are listed, includes() filters the others out).
    const drafts = (
      await this.fhir.searchAll<Task>('Task', { status: this.list.statuses, _sort: '_lastUpdated', _count: 1000 })
    ).filter(this.list.includes);
    for (let i = 0; i < drafts.length; i += 1000) await this.apply(drafts.slice(i, i + 1000));
    const seen = new Set(drafts.map((t) => t.id));
    const indexed = await this.redis.hkeys(`${this.p}item`);
    const unseen = indexed.filter((id) => !seen.has(id));
    // A server paging by offset (this search without a cursor, e.g. HAPI's) skips a Task when one on an earlier page
    // leaves `draft` meanwhile (an approval during the rebuild): each Task the index holds and the search did not
    // return is read back before it goes.
    // Still on the list: kept; otherwise removed at its own version (apply).
    const reread = await this.readByIds<Task>('Task', unseen);
    await this.apply(reread);
    const found = new Set(reread.map((t) => t.id));
    const deleted = unseen.filter((id) => !found.has(id));
    // Removed with the rebuild's start time: a Task written to the worklist after it started stays.
    const pipeline = this.redis.pipeline();
    for (const id of deleted) this.applyCommand(pipeline, id, started, 'del');
    await execOrThrow(pipeline);
    await this.redis.set(`${this.p}built`, String(Date.now()));
    const kept = reread.filter(this.list.includes).length;
    return { tasks: drafts.length + kept, removed: unseen.length - kept, ms: Date.now() - started };
  }

  /** Resources by id, 100 to a search (a URL's length); those that no longer exist are absent. */
  private async readByIds<T extends Task | CarePlan>(type: T['resourceType'], ids: string[]): Promise<T[]> {
    const found: T[] = [];
    for (let i = 0; i < ids.length; i += 100) {
      const chunk = ids.slice(i, i + 100);
      found.push(...(await this.fhir.searchAll<T>(type, { _id: chunk.join(','), _count: chunk.length })));
    }
    return found;
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

  /** One page of the list, soonest due first, with the exact total of what matches. */
  async query(q: WorklistIndexQuery, now = new Date()): Promise<WorklistIndexPage> {
    const protocolUrl = q.protocol?.split('|')[0];
    const exactProtocol = q.protocol?.includes('|') ? q.protocol : undefined;
    // The narrowest set that answers one filter; the others (or a protocol's version) are read from the entries.
    const setName = q.patient
      ? `pt:${q.patient}`
      : q.owner
        ? `ow:${q.owner}`
        : q.kind
          ? `kd:${q.kind}`
          : protocolUrl
            ? `pr:${protocolUrl}`
            : 'all';
    const set = this.p + setName;
    const max = q.dueBefore ? `(${startBound(q.dueBefore)}` : '+';
    const setFilters = [q.patient, q.owner, q.kind, protocolUrl].filter(Boolean).length;
    const byEntry = (s: StoredEntry) =>
      (!q.kind || s.kd === q.kind) &&
      (!q.owner || s.ow === q.owner) &&
      (exactProtocol ? s.e.protocol === exactProtocol : !protocolUrl || s.pr === protocolUrl);
    // Several patients: their sets read together, the other filters from the entries.
    if (q.patients)
      return this.queryByEntry(
        q,
        q.patients.map((id) => `${this.p}pt:${id}`),
        max,
        now,
        q.owner || q.kind || protocolUrl ? byEntry : undefined,
      );
    if (exactProtocol || setFilters > 1) return this.queryByEntry(q, [set], max, now, byEntry);
    const page = (
      this.redis as unknown as Record<string, (...args: string[]) => Promise<[number, string[], (string | null)[]]>>
    ).kcWorklistPage;
    const [total, members, raw] = await page.call(
      this.redis,
      this.p,
      setName,
      q.after ?? '',
      q.dueBefore ? String(Number(startBound(q.dueBefore))) : '',
      q.dueAfter ? String(q.dueAfter.getTime()) : '',
      q.overdue === undefined ? '' : q.overdue ? '1' : '0',
      String(now.getTime()),
      String(q.count),
    );
    const items: WorklistIndexPage['items'] = [];
    let lastMember: string | undefined;
    for (const [i, member] of members.slice(0, q.count).entries()) {
      const stored = raw[i] ? (JSON.parse(raw[i]) as StoredEntry) : undefined;
      if (stored?.m !== member) continue; // written meanwhile: listed under its new member
      items.push({ ...stored.e, overdue: isOverdue(parseMember(member)!, now) });
      lastMember = member;
    }
    return { total, items, next: members.length > q.count ? lastMember : undefined };
  }

  /**
   * Whose the listed Tasks are: per owner (UNASSIGNED for nobody's) how many, and the owner's name as the Tasks carry
   * it, most first. Found by a SCAN of the `ow:` sets (not kept on every write: asked for by a person, not per Task).
   */
  async owners(): Promise<OwnerCount[]> {
    const keys: string[] = [];
    const prefix = `${this.p}ow:`;
    const batches = this.redis.scanStream({ match: `${prefix}*`, count: 1000 }) as AsyncIterable<string[]>;
    for await (const batch of batches) keys.push(...batch);
    if (!keys.length) return [];
    const pipeline = this.redis.pipeline();
    for (const key of keys) pipeline.zcard(key).zrange(key, '0', '0');
    const replies = await execOrThrow(pipeline);
    const counts = keys.map((key, i) => ({
      owner: key.slice(prefix.length),
      count: replies[2 * i] as number,
      first: (replies[2 * i + 1] as string[])[0],
    }));
    const listed = counts.filter((c) => c.count > 0 && c.first !== undefined && parseMember(c.first));
    const firsts = await this.entries(listed.map((c) => c.first));
    return listed
      .map((c, i) => ({ owner: c.owner, count: c.count, display: firsts[i]?.e.owner?.display }))
      .sort((a, b) => b.count - a.count || a.owner.localeCompare(b.owner));
  }

  /**
   * A page of several sets (the patients a name matches), or filtered on the entries themselves (a protocol's version,
   * or two of patient, owner, kind and protocol): reads every member of the sets in range, so it costs what those sets
   * hold (a patient's: small; a kind's: most of a clinic's open Tasks of that kind), and every entry only when
   * `entryFilter` is given.
   */
  private async queryByEntry(
    q: WorklistIndexQuery,
    sets: string[],
    max: string,
    now: Date,
    entryFilter?: (s: StoredEntry) => boolean,
  ): Promise<WorklistIndexPage> {
    const byMember = (m: ParsedMember) =>
      (!q.dueAfter || (m.end !== undefined && m.end >= q.dueAfter.getTime())) &&
      (q.overdue === undefined || isOverdue(m, now) === q.overdue);
    const members = (await this.membersOf(sets, max)).filter((m) => {
      const parsed = parseMember(m);
      return parsed !== undefined && byMember(parsed);
    });
    let matching = members;
    if (entryFilter) {
      matching = [];
      for (let i = 0; i < members.length; i += 1000) {
        const chunk = members.slice(i, i + 1000);
        (await this.entries(chunk)).forEach((s, j) => {
          if (s && entryFilter(s)) matching.push(chunk[j]);
        });
      }
    }
    const after = matching.filter((m) => !q.after || m > q.after);
    const page = after.slice(0, q.count);
    const entries = await this.entries(page);
    return {
      total: matching.length,
      // An entry written between the reads is skipped (it is listed under its new member).
      items: page.flatMap((m, i) => {
        const stored = entries[i];
        return stored ? [{ ...stored.e, overdue: isOverdue(parseMember(m)!, now) }] : [];
      }),
      next: after.length > q.count ? page[page.length - 1] : undefined,
    };
  }

  /** The members of the sets up to `max`, in the lists' order (soonest due first), each once. */
  private async membersOf(sets: string[], max: string): Promise<string[]> {
    if (sets.length === 1) return this.redis.zrangebylex(sets[0], '-', max);
    const pipeline = this.redis.pipeline();
    for (const set of sets) pipeline.zrangebylex(set, '-', max);
    const replies = sets.length ? await execOrThrow(pipeline) : [];
    // Members sort by due, then id, as strings: the union sorted the same way keeps the lists' order and cursor.
    return [...new Set((replies as string[][]).flat())].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
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

  /**
   * CarePlan id -> protocol canonical: from the CarePlans written with the Tasks, else the index's map, else one
   * search for the unknown CarePlans.
   */
  private async protocolsFor(tasks: Task[], written: Map<string, string>): Promise<Map<string, string>> {
    const result = new Map<string, string>();
    const ids: string[] = [];
    for (const id of new Set(tasks.map(carePlanOf))) {
      if (!id) continue;
      const protocol = written.get(id);
      if (protocol) result.set(id, protocol);
      else ids.push(id);
    }
    const unseen = ids.filter((id) => {
      const protocol = PROTOCOLS_SEEN.get(`${this.carePlans}|${id}`);
      return protocol ? (result.set(id, protocol), false) : true;
    });
    if (!unseen.length) return result;
    const known = await this.redis.hmget(this.carePlans, ...unseen);
    const unknown = unseen.filter((id, i) => (known[i] ? (result.set(id, known[i]), false) : true));
    const found = carePlanProtocols(await this.readByIds<CarePlan>('CarePlan', unknown));
    for (const [id, protocol] of found) result.set(id, protocol);
    if (found.size) await this.redis.hset(this.carePlans, Object.fromEntries(found));
    for (const id of unseen) if (result.has(id)) PROTOCOLS_SEEN.set(`${this.carePlans}|${id}`, result.get(id)!);
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
      stored?.kd ?? '',
      stored?.ow ?? '',
    );
  }
}

/** The approved Tasks still to be done (TO_DO), kept and queried as the worklist is, under their own keys. */
export class ToDoIndex extends WorklistIndex {
  constructor(redis: Redis, fhir: FhirClient, prefix: string) {
    super(redis, fhir, prefix, TO_DO);
  }
}

/**
 * One write recorded on several lists (the worklist and the to-do list) in one Redis round trip, the Tasks a server
 * did not send back read once for all of them.
 */
export async function recordOnLists(
  redis: Redis,
  lists: WorklistIndex[],
  written: Resource[],
  locations: string[] = [],
): Promise<void> {
  if (!lists.length) return;
  const tasks = await lists[0].tasksWritten(written, locations);
  const protocols = carePlanProtocols(written);
  const pipeline = redis.pipeline();
  lists[0].rememberProtocols(pipeline, protocols);
  for (const list of lists) await list.recordIn(pipeline, tasks, protocols);
  if (pipeline.length) await execOrThrow(pipeline);
}

/** Runs the pipeline; its replies in order, or the first command's error. */
async function execOrThrow(pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([err]) => err);
  if (failed) throw failed[0] instanceof Error ? failed[0] : new Error(String(failed[0]));
  return results.map(([, reply]) => reply);
}

/** Cursors are opaque to clients: the last member, base64url. */
export function encodeCursor(member: string): string {
  return Buffer.from(member, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string | undefined {
  const member = Buffer.from(cursor, 'base64url').toString('utf8');
  return parseMember(member) ? member : undefined;
}

/** CarePlan id -> the protocol it instantiates, for the CarePlans among the resources that name one. */
function carePlanProtocols(resources: Resource[]): Map<string, string> {
  const protocols = new Map<string, string>();
  for (const r of resources) {
    const protocol = r.resourceType === 'CarePlan' ? protocolOf(r) : undefined;
    if (r.id && protocol) protocols.set(r.id, protocol);
  }
  return protocols;
}
