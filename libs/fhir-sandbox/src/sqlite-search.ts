import type { SQLInputValue, StatementSync } from 'node:sqlite';
import {
  DEFAULT_SEARCH_COUNT,
  EMPTY,
  OperationOutcomeError,
  Operator,
  badRequest,
  evalFhirPath,
  formatSearchQuery,
  getParsedExpressionForResourceType,
  globalSchema,
  matchesSearchRequest,
  splitSearchOnComma,
  type Filter,
  type parseFhirPath,
  type SearchRequest,
  type SortRule,
  type WithId,
} from '@medplum/core';
import type { Bundle, BundleEntry, Reference, Resource } from '@medplum/fhirtypes';
import {
  countOf,
  existsAll,
  inSortOrder,
  missingSegment,
  pageSql,
  sortKeyColumns,
  valuedSegment,
  type DateSort,
  type Sql,
} from './date-sort';
import { indexCondition, parseChainedFilter, type ChainedFilter, type IndexedFilter } from './search-filters';
import { absentKey, stringValuesOf, type IndexedParam } from './search-index';
import { assertOffsetWithin, cursorAfter, formatCursor, pagesByCursor, parseCursor } from './search-paging';
import { BOUND_LIMIT } from './sql-limit';

/**
 * How the embedded store answers a search over its index (sqlite-repository.ts keeps the index, this reads it):
 * every filter the index answers exactly as SQL, the most selective one driving; the rest with Medplum's matcher
 * over those candidates; pages in insertion order, or by a date parameter from the date index (date-sort.ts);
 * `total` when asked, as Medplum's server gives it.
 */

/** How far the driver estimate counts before it stops (enough to tell a selective filter from a broad one). */
const ESTIMATE_CAP = 500;
/** A driver matching at most this many index rows is taken without estimating the other filters. */
const SMALL_DRIVER = 20;
const LAST_UPDATED = 'Resource.meta.lastUpdated';
/**
 * A filter on a reference, `_id` or `identifier` names one thing each: a handful of matches, not worth an estimate
 * query (~15 us) when it is a search's only filter (the follow-up worker's and `$apply`'s lookups).
 */
function namesFew(filter: IndexedFilter): boolean {
  const code = filter.key.slice(filter.key.indexOf(':') + 1);
  return filter.table === 'ref' || code === '_id' || code === 'identifier';
}

/** SQL selecting the given columns for a search's candidates, and whether the search is broad. */
interface CandidateQuery {
  select: (columns: string) => string;
  params: SQLInputValue[];
  /**
   * When asked: every filter matches 500 index rows or more (with none, 500 resources of the type), so walking an
   * index in order finds a page sooner than collecting and ordering the matches (`Task?status=requested&_count=20`
   * over 100k Tasks: 115 ms, all 67k matches sorted).
   */
  broad: boolean;
}

/** Whether the client asked for `total` (Medplum's server counts every match only then). */
function asksForTotal(searchRequest: SearchRequest): boolean {
  return searchRequest.total === 'accurate' || searchRequest.total === 'estimate';
}

/** A search's page: `_count` (-1: every match) and `_offset`. */
function pageOf(searchRequest: SearchRequest): { count: number; offset: number } {
  return { count: searchRequest.count ?? -1, offset: searchRequest.offset ?? 0 };
}

/** Which index tables' filters are estimated first: references (based-on, subject) are the usual selective ones. */
const ESTIMATE_ORDER: Record<IndexedFilter['table'], number> = { ref: 0, token: 1, str: 2, date: 3, absent: 4 };

/** A single `_sort` on `_id`, and its direction; undefined for any other sort. */
function idSortOf(searchRequest: SearchRequest): { descending: boolean } | undefined {
  const rules = searchRequest.sortRules ?? EMPTY;
  return rules.length === 1 && rules[0].code === '_id' ? { descending: !!rules[0].descending } : undefined;
}

/**
 * `FROM ... WHERE ...` over a filter's index rows (alias `x`), for the filter driving a search or estimated: a full-text
 * filter's rows are found through its trigram index, the others' through their table's (p, value) indexes.
 */
function indexRows(filter: IndexedFilter): Sql {
  if (filter.match !== undefined)
    return {
      sql: 'FROM str_text t CROSS JOIN str x ON x.rowid = t.rowid WHERE str_text MATCH ? AND x.p = ?',
      params: [filter.match, filter.key],
    };
  return { sql: `FROM ${filter.table} x WHERE x.p = ? AND (${filter.where})`, params: [filter.key, ...filter.params] };
}

/** What a search needs from the store: its prepared statements and its index's parameters. */
export interface SearchStore {
  stmt(sql: string): StatementSync;
  /** The token, reference, date and absent parameters of a type. */
  params(resourceType: string): IndexedParam[];
  /** Builds a parameter's index rows on its first use (a search's). */
  ensureIndexed(resourceType: string, param: IndexedParam): void;
  /** The most any indexed value of a date parameter spans (`hi - lo`, ms), or more; never less. */
  maxSpanMs(key: string): number;
  /** The largest `_offset` answered (search-paging.ts). */
  maxSearchOffset: number;
}

/** One store's searches. */
export class SqliteSearch {
  private readonly sortAtoms = new Map<string, ReturnType<typeof parseFhirPath>>();
  private readonly collator = new Intl.Collator();

  constructor(private readonly store: SearchStore) {}

  run<T extends Resource>(searchRequest: SearchRequest<T>): Bundle<WithId<T>> {
    if (searchRequest.cursor !== undefined || pagesByCursor(searchRequest)) return this.cursorPage(searchRequest);
    assertOffsetWithin(searchRequest.offset ?? 0, this.store.maxSearchOffset);
    return this.page(searchRequest);
  }

  /**
   * A page of a search sorted by `_lastUpdated` ascending, from its cursor (search-paging.ts), with the next page's
   * cursor: `_lastUpdated` at or after the cursor's instant, which the date walk seeks to, less the resources of that
   * instant already given. A deep page costs what a first page does.
   */
  private cursorPage<T extends Resource>(searchRequest: SearchRequest<T>): Bundle<WithId<T>> {
    if (searchRequest.offset) throw new OperationOutcomeError(badRequest('Cannot use both offset and cursor'));
    const cursor = searchRequest.cursor !== undefined ? parseCursor(searchRequest.cursor) : undefined;
    const count = searchRequest.count ?? DEFAULT_SEARCH_COUNT;
    const excluded = new Set(cursor?.excludedIds);
    const from: Filter[] = cursor
      ? [{ code: '_lastUpdated', operator: Operator.GREATER_THAN_OR_EQUALS, value: cursor.nextInstant }]
      : [];
    const found = this.page({
      ...searchRequest,
      filters: [...(searchRequest.filters ?? EMPTY), ...from],
      sortRules: [{ code: '_lastUpdated' }],
      // The page, the resources to leave out (each at most once) and one more: the next page's first.
      count: count + excluded.size + 1,
      offset: undefined,
      cursor: undefined,
      total: undefined,
    });
    const matches = (found.entry ?? []).filter((e) => !excluded.has(e.resource!.id));
    const entry = matches.slice(0, count);
    // No next link for a page of nothing (`_count=0`), as Medplum's server gives none.
    const next = count > 0 ? matches[count]?.resource : undefined;
    const bundle: Bundle<WithId<T>> = {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: entry.length ? entry : undefined,
    };
    if (asksForTotal(searchRequest))
      bundle.total = this.page({
        ...searchRequest,
        count: 0,
        offset: undefined,
        cursor: undefined,
        sortRules: undefined,
        total: 'accurate',
      }).total;
    else if (!next && !cursor) bundle.total = entry.length;
    if (next) {
      const given = entry.map((e) => e.resource!);
      const after = formatCursor(cursorAfter(given, next, cursor));
      const query = formatSearchQuery({ ...searchRequest, offset: undefined, cursor: after });
      bundle.link = [{ relation: 'next', url: `${searchRequest.resourceType}${query}` }];
    }
    return bundle;
  }

  /** A page by `_offset` (or every match, without `_count`). */
  private page<T extends Resource>(searchRequest: SearchRequest<T>): Bundle<WithId<T>> {
    const { resourceType } = searchRequest;
    const indexed: IndexedFilter[] = [];
    const residual: Filter[] = [];
    const chained: ChainedFilter[] = [];
    const exact: { param: IndexedParam; values: string[] }[] = [];
    for (const filter of searchRequest.filters ?? EMPTY) {
      const chain = parseChainedFilter(resourceType, filter);
      if (chain) {
        chained.push(chain);
        continue;
      }
      const byIndex = this.indexedFilter(resourceType, filter);
      if (byIndex) indexed.push(byIndex);
      // `:exact` on a string: the trigram index narrows (a substring), the whole value then decides, as on Medplum's
      // and HAPI's servers (Medplum's in-memory matcher takes it for a substring).
      const param = filter.operator === Operator.EXACT ? this.stringParam(resourceType, filter.code) : undefined;
      if (param) exact.push({ param, values: splitSearchOnComma(filter.value) });
      else if (!byIndex) residual.push(filter);
    }
    // Every filter answered by the index: a page (sorted by a date or `_id`, or unsorted) is read from it.
    const allIndexed = !residual.length && !chained.length && !exact.length;
    const dateSort = allIndexed ? this.dateSortOf(resourceType, searchRequest) : undefined;
    if (dateSort) return this.sortedByDate(resourceType, indexed, dateSort, searchRequest);
    const idSort = allIndexed ? idSortOf(searchRequest) : undefined;
    if (idSort) return this.sortedById(resourceType, indexed, idSort.descending, searchRequest);

    const pageable = allIndexed && !searchRequest.sortRules?.length;
    // An unsorted page the matcher decides stops at its last match (firstMatches); a broad one walks the type.
    const firstOnly =
      !allIndexed && !searchRequest.sortRules?.length && (searchRequest.count ?? 0) > 0 && !asksForTotal(searchRequest);
    const query = this.candidateQuery(
      resourceType,
      indexed,
      firstOnly || (pageable && (searchRequest.count ?? -1) >= 0),
    );
    // Every filter indexed and no sort: SQL reads only the page (with its content, and one row more to know whether
    // a next page exists), so a page costs the same whatever the number of matches (the worklist's and EHRs'
    // `Task?status=draft&_count=20` on 20k Tasks), and a search answered in one page costs one query.
    if (pageable) {
      const { count, offset } = pageOf(searchRequest);
      // A broad search pages by walking the type (insertionWalk); a selective one reads its few candidates.
      const paged = query.broad ? this.insertionWalk(resourceType, indexed) : query;
      const rows = this.store
        .stmt(`${paged.select('r.content AS content')} ${BOUND_LIMIT} OFFSET ?`)
        .all(...paged.params, count < 0 ? -1 : count + 1, offset) as { content: string }[];
      const more = count >= 0 && rows.length > count;
      const page = more ? rows.slice(0, count) : rows;
      const entry = page.map((row): BundleEntry<WithId<T>> => ({
        search: { mode: 'match' },
        resource: JSON.parse(row.content) as WithId<T>,
      }));
      return this.searchset(searchRequest, entry, more, () => this.countOf(query));
    }

    const residualRequest: SearchRequest = { resourceType, filters: residual };
    const matches = (resource: WithId<T>): boolean =>
      (!residual.length || matchesSearchRequest(resource, residualRequest)) &&
      chained.every((chain) => this.matchesChainedFilter(resource, chain)) &&
      exact.every(({ param, values }) => stringValuesOf(resource, param).some((v) => values.includes(v)));
    const checked = residual.length || chained.length || exact.length;
    if (firstOnly)
      return this.firstMatches(searchRequest, query.broad ? this.insertionWalk(resourceType, indexed) : query, matches);

    // Candidates, in insertion order: exactly the matches when every filter is indexed. Read with their content when
    // each will be parsed anyway (a residual filter or a sort on the resource): one query, not one per candidate.
    const sortsOnContent = (searchRequest.sortRules ?? EMPTY).some(
      (rule) => this.sortExpression(resourceType, rule) !== LAST_UPDATED,
    );
    const loaded = new Map<number, WithId<T>>();
    let seqs: number[];
    if (checked || sortsOnContent) {
      const rows = this.store.stmt(query.select('r.seq AS seq, r.content AS content')).all(...query.params) as {
        seq: number;
        content: string;
      }[];
      seqs = rows.map((r) => r.seq);
      for (const r of rows) loaded.set(r.seq, JSON.parse(r.content) as WithId<T>);
    } else {
      seqs = (this.store.stmt(query.select('r.seq AS seq')).all(...query.params) as { seq: number }[]).map(
        (r) => r.seq,
      );
    }
    const load = (seq: number): WithId<T> => {
      let resource = loaded.get(seq);
      if (!resource) {
        const row = this.store.stmt('SELECT content FROM resource WHERE seq = ?').get(seq) as { content: string };
        resource = JSON.parse(row.content) as WithId<T>;
        loaded.set(seq, resource);
      }
      return resource;
    };
    if (checked) seqs = seqs.filter((seq) => matches(load(seq)));
    const total = seqs.length;

    for (const sortRule of searchRequest.sortRules ?? EMPTY) seqs = this.sortSeqs(resourceType, seqs, sortRule, load);
    if (searchRequest.offset !== undefined) seqs = seqs.slice(searchRequest.offset);
    if (searchRequest.count !== undefined) seqs = seqs.slice(0, searchRequest.count);

    const entry = seqs.map((seq): BundleEntry<WithId<T>> => ({ search: { mode: 'match' }, resource: load(seq) }));
    return { resourceType: 'Bundle', type: 'searchset', entry: entry.length ? entry : undefined, total };
  }

  /**
   * An unsorted page of a search Medplum's matcher decides (a filter the index cannot answer: a negation, a number, a
   * string under three characters): the candidates read in insertion order until the page and one match more are
   * found, not every candidate (`Patient?name=be&_count=20` over 50k Patients parsed each of them, 0.36 s). A broad
   * search walks the type in insertion order (insertionWalk), where collecting and ordering every candidate first
   * would read them all. No total unless the page tells it (a search asking for one is not answered here).
   */
  private firstMatches<T extends Resource>(
    searchRequest: SearchRequest<T>,
    query: Pick<CandidateQuery, 'select' | 'params'>,
    matches: (resource: WithId<T>) => boolean,
  ): Bundle<WithId<T>> {
    const { count, offset } = pageOf(searchRequest);
    const found: WithId<T>[] = [];
    const candidates = this.store.stmt(query.select('r.content AS content')).iterate(...query.params);
    for (const row of candidates as Iterable<{ content: string }>) {
      const resource = JSON.parse(row.content) as WithId<T>;
      if (matches(resource) && found.push(resource) > offset + count) break;
    }
    const entry = found
      .slice(offset, offset + count)
      .map((resource): BundleEntry<WithId<T>> => ({ search: { mode: 'match' }, resource }));
    return this.searchset(searchRequest, entry, found.length > offset + count, () => {
      throw new Error('a search asking for a total is counted by page(), not here');
    });
  }

  /**
   * SQL selecting the given columns of `resource r` for the resources of this type matching every indexed filter,
   * in insertion order. The driver is chosen once (its estimates are queries), for every select made of it.
   */
  private candidateQuery(resourceType: string, indexed: IndexedFilter[], needBreadth = false): CandidateQuery {
    if (!indexed.length)
      return {
        select: (columns) => `SELECT ${columns} FROM resource r WHERE r.type = ? ORDER BY r.seq`,
        params: [resourceType],
        broad: needBreadth && this.typeHasAtLeast(resourceType, ESTIMATE_CAP),
      };
    // The most selective filter drives (estimated by counting its index rows, up to a cap, and never further than
    // the best so far: references and identifiers, counted first, are usually a handful); the others are checked
    // per candidate through the (seq, p) indexes. One filter alone is estimated only when breadth is asked.
    let driver = indexed[0];
    let best = ESTIMATE_CAP + 1;
    const estimated = indexed.length > 1 || (needBreadth && !namesFew(driver));
    if (estimated) {
      for (const f of [...indexed].sort((a, b) => ESTIMATE_ORDER[a.table] - ESTIMATE_ORDER[b.table])) {
        const n = this.estimateRows(f, best);
        if (n < best) {
          best = n;
          driver = f;
        }
        // A driver this small is cheaper to check candidate by candidate than another estimate query.
        if (best <= SMALL_DRIVER) break;
      }
    }
    const others = existsAll(indexed.filter((f) => f !== driver));
    const rows = indexRows(driver);
    const from =
      `FROM (SELECT DISTINCT x.seq ${rows.sql}) d ` +
      `CROSS JOIN resource r ON r.seq = d.seq WHERE r.type = ?${others.sql} ORDER BY r.seq`;
    const params: SQLInputValue[] = [...rows.params, resourceType, ...others.params];
    // Broad: every filter matched the cap or more (the best estimate is the smallest; a lone filter that names few
    // was not estimated and is not broad).
    const broad = needBreadth && estimated && best >= ESTIMATE_CAP;
    return { select: (columns) => `SELECT ${columns} ${from}`, params, broad };
  }

  private typeHasAtLeast(resourceType: string, n: number): boolean {
    const sql = `SELECT count(*) AS n FROM (SELECT 1 FROM resource WHERE type = ? ${BOUND_LIMIT})`;
    return (this.store.stmt(sql).get(resourceType, n) as { n: number }).n >= n;
  }

  /**
   * The matches in insertion order by the table's own order (`+r.type`: not through the type index, which would
   * need a sort), each checked against the filters by its (seq, p) rows; a page stops the walk.
   */
  private insertionWalk(
    resourceType: string,
    indexed: IndexedFilter[],
  ): { select: (columns: string) => string; params: SQLInputValue[] } {
    const exists = existsAll(indexed);
    return {
      select: (columns) => `SELECT ${columns} FROM resource r WHERE +r.type = ?${exists.sql} ORDER BY r.seq`,
      params: [resourceType, ...exists.params],
    };
  }

  /** How many index rows a filter matches, counted up to `cap` (a query: the estimates are what drivers cost). */
  private estimateRows(filter: IndexedFilter, cap: number): number {
    const rows = indexRows(filter);
    return (
      this.store.stmt(`SELECT count(*) AS n FROM (SELECT 1 ${rows.sql} ${BOUND_LIMIT})`).get(...rows.params, cap) as {
        n: number;
      }
    ).n;
  }

  /** A single `_sort` on a date parameter, which the date index answers (date-sort.ts); undefined for other sorts. */
  private dateSortOf(resourceType: string, searchRequest: SearchRequest): DateSort | undefined {
    const rules = searchRequest.sortRules ?? EMPTY;
    if (rules.length !== 1) return undefined;
    const [rule] = rules;
    const param = this.store.params(resourceType).find((p) => p.code === rule.code && p.kind === 'date');
    if (!param) return undefined;
    this.store.ensureIndexed(resourceType, param);
    const lastUpdated = param.code === '_lastUpdated';
    // Which resources lack a value (they come first descending): every resource has a lastUpdated.
    if (!lastUpdated) this.ensureIndexedByKey(resourceType, absentKey(param.key));
    // How far a value's `hi` may lie after its `lo`, for a walk to seek to the parameter's own filters' bounds: read
    // from the index for `_lastUpdated` too (a millisecond where every value is a full instant, as this store writes
    // them), where a second's slack had the cursor page of 20k Tasks written within 300 ms read half of them (10 ms).
    const filtered = searchRequest.filters?.some((f) => f.code === rule.code);
    const spanMs = filtered ? this.store.maxSpanMs(param.key) : Infinity;
    return { key: param.key, descending: !!rule.descending, lastUpdated, spanMs };
  }

  /**
   * A date-sorted page: a filter's few candidates (a patient's, a plan's) read with their index values and put in
   * order, else the date index walked in order until the page is full, so the page costs the same whatever is stored.
   */
  private sortedByDate<T extends Resource>(
    resourceType: string,
    indexed: IndexedFilter[],
    sort: DateSort,
    searchRequest: SearchRequest<T>,
  ): Bundle<WithId<T>> {
    return this.sortedPage(resourceType, indexed, searchRequest, {
      walk: (limit, offset) => this.walkByDate(resourceType, indexed, sort, limit, offset),
      order: (query) =>
        inSortOrder(
          this.store.stmt(query.select(sortKeyColumns(sort))).all(sort.key, ...query.params) as {
            seq: number;
            k: string | null;
          }[],
          sort,
        ),
    });
  }

  /**
   * An `_id`-sorted page: a filter's few candidates sorted by id, or the type's (type, id) index walked in order
   * until the page is full (`Task?_sort=_id&_count=10` over 100k Tasks parsed and sorted every Task: 0.7 s). Ids in
   * code-point order, as Medplum's server sorts its uuid ids; MemoryRepository's locale comparator agrees for the ids
   * the store writes (lowercase uuids) and differs only for ids that mix cases.
   */
  private sortedById<T extends Resource>(
    resourceType: string,
    indexed: IndexedFilter[],
    descending: boolean,
    searchRequest: SearchRequest<T>,
  ): Bundle<WithId<T>> {
    const direction = descending ? -1 : 1;
    return this.sortedPage(resourceType, indexed, searchRequest, {
      walk: (limit, offset) => {
        const exists = existsAll(indexed);
        const sql =
          `SELECT r.seq AS seq FROM resource r INDEXED BY resource_type_id WHERE r.type = ?${exists.sql} ` +
          `ORDER BY r.id${descending ? ' DESC' : ''} ${BOUND_LIMIT} OFFSET ?`;
        return this.seqsOf({ sql, params: [resourceType, ...exists.params, limit, offset] });
      },
      order: (query) =>
        (
          this.store.stmt(query.select('r.seq AS seq, r.id AS id')).all(...query.params) as {
            seq: number;
            id: string;
          }[]
        )
          .sort((a, b) => (a.id < b.id ? -direction : direction))
          .map((row) => row.seq),
    });
  }

  /**
   * A sorted page, one of two ways: a broad search walks an index in order (`walk`: at most `limit` seqs from
   * `offset`), a filter's few candidates are put in order whole (`order`) and the page cut from them. `limit` is
   * `_count` and one more, which says a next page exists; the seqs' resources are answered as a searchset.
   */
  private sortedPage<T extends Resource>(
    resourceType: string,
    indexed: IndexedFilter[],
    searchRequest: SearchRequest<T>,
    ways: { walk: (limit: number, offset: number) => number[]; order: (query: CandidateQuery) => number[] },
  ): Bundle<WithId<T>> {
    const { count, offset } = pageOf(searchRequest);
    const query = this.candidateQuery(resourceType, indexed, true);
    const limit = count < 0 ? -1 : count + 1;
    const seqs = query.broad
      ? ways.walk(limit, offset)
      : ways.order(query).slice(offset, limit < 0 ? undefined : offset + limit);
    const more = count >= 0 && seqs.length > count;
    const content = this.store.stmt('SELECT content FROM resource WHERE seq = ?');
    const entry = (more ? seqs.slice(0, count) : seqs).map((seq): BundleEntry<WithId<T>> => ({
      search: { mode: 'match' },
      resource: JSON.parse((content.get(seq) as { content: string }).content) as WithId<T>,
    }));
    return this.searchset(searchRequest, entry, more, () => this.countOf(query));
  }

  /**
   * A page of matches as Medplum's server answers it: `total` when the client asks (`_total=accurate` or
   * `estimate`, or `_count=0`, which asks for nothing else) or when the page itself tells it (no next page and a
   * match on it), never a count of every match for each page (it grew with the store: 15 ms for
   * `Task?_sort=-_lastUpdated&_count=10` over 100k Tasks); a next link when one more match exists.
   */
  private searchset<T extends Resource>(
    searchRequest: SearchRequest<T>,
    entry: BundleEntry<WithId<T>>[],
    more: boolean,
    countAll: () => number,
  ): Bundle<WithId<T>> {
    const { count, offset } = pageOf(searchRequest);
    const asked = asksForTotal(searchRequest) || count === 0;
    const total = !more && (entry.length || !offset) ? offset + entry.length : asked ? countAll() : undefined;
    const bundle: Bundle<WithId<T>> = {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: entry.length ? entry : undefined,
    };
    if (total !== undefined) bundle.total = total;
    if (more)
      bundle.link = [
        {
          relation: 'next',
          url: `${searchRequest.resourceType}${formatSearchQuery({ ...searchRequest, offset: offset + count })}`,
        },
      ];
    return bundle;
  }

  private countOf(query: CandidateQuery): number {
    return (
      this.store.stmt(`SELECT count(*) AS n FROM (${query.select('r.seq')})`).get(...query.params) as { n: number }
    ).n;
  }

  /** The page, from the matches with a value (walked in the index's order) and those without, in sort order. */
  private walkByDate(
    resourceType: string,
    filters: IndexedFilter[],
    sort: DateSort,
    limit: number,
    offset: number,
  ): number[] {
    const valued = valuedSegment(resourceType, filters, sort);
    const missing = () => missingSegment(resourceType, filters, sort);
    const segments = sort.lastUpdated ? [valued] : sort.descending ? [missing(), valued] : [valued, missing()];
    const seqs: number[] = [];
    let skip = offset;
    for (const segment of segments) {
      const want = limit < 0 ? -1 : limit - seqs.length;
      if (want === 0) break;
      const page = pageSql(segment);
      const found = this.seqsOf({ sql: page.sql, params: [...page.params, want, skip] });
      seqs.push(...found);
      // The page continues at the next segment's start, or (nothing found here) past this segment's rows.
      if (found.length) skip = 0;
      else if (skip > 0) {
        const size = countOf(segment);
        skip -= (this.store.stmt(size.sql).get(...size.params) as { n: number }).n;
      }
    }
    return seqs;
  }

  private seqsOf(query: Sql): number[] {
    return (this.store.stmt(query.sql).all(...query.params) as { seq: number }[]).map((r) => r.seq);
  }

  /**
   * The filter as an exact SQL condition over the index (search-filters.ts), or undefined when only Medplum's
   * matcher can answer it; a parameter the index answers is indexed from then on.
   */
  private indexedFilter(resourceType: string, filter: Filter): IndexedFilter | undefined {
    const param = this.store.params(resourceType).find((p) => p.code === filter.code);
    if (!param) return undefined;
    const condition = indexCondition(param, filter);
    if (condition) this.store.ensureIndexed(resourceType, param);
    // `:missing=true` reads the parameter's `absent` companion.
    if (condition?.table === 'absent') this.ensureIndexedByKey(resourceType, condition.key);
    return condition;
  }

  /** The string parameter of this code (not a uri: its values are compared whole already), if the type has one. */
  private stringParam(resourceType: string, code: string): IndexedParam | undefined {
    if (globalSchema.types[resourceType]?.searchParams?.[code]?.type !== 'string') return undefined;
    return this.store.params(resourceType).find((p) => p.code === code && p.kind === 'string');
  }

  /** Indexes the parameter with this key (a date parameter's `absent` companion) from its first use on. */
  private ensureIndexedByKey(resourceType: string, key: string): void {
    const param = this.store.params(resourceType).find((p) => p.key === key);
    if (param) this.store.ensureIndexed(resourceType, param);
  }

  /** Parsed once per type and expression: parsing cost more than sorting a search's few matches. */
  private sortAtom(resourceType: string, expression: string): ReturnType<typeof parseFhirPath> {
    const key = `${resourceType} ${expression}`;
    let atom = this.sortAtoms.get(key);
    if (!atom) {
      atom = getParsedExpressionForResourceType(resourceType, expression);
      this.sortAtoms.set(key, atom);
    }
    return atom;
  }

  private sortExpression(resourceType: string, sortRule: SortRule): string | undefined {
    return globalSchema.types[resourceType]?.searchParams?.[sortRule.code]?.expression;
  }

  /** One stable sort pass, with MemoryRepository's comparator (JSON of the parameter's values, locale order). */
  private sortSeqs<T extends Resource>(
    resourceType: string,
    seqs: number[],
    sortRule: SortRule,
    load: (seq: number) => WithId<T>,
  ): number[] {
    const expression = this.sortExpression(resourceType, sortRule);
    if (!expression) return seqs;
    const keys = new Map<number, string>();
    if (expression === LAST_UPDATED) {
      // From the column, without reading the resources.
      const stmt = this.store.stmt('SELECT last_updated FROM resource WHERE seq = ?');
      for (const seq of seqs) keys.set(seq, JSON.stringify([(stmt.get(seq) as { last_updated: string }).last_updated]));
    } else {
      const atom = this.sortAtom(resourceType, expression);
      for (const seq of seqs) keys.set(seq, JSON.stringify(evalFhirPath(atom, load(seq))));
    }
    const direction = sortRule.descending ? -1 : 1;
    return [...seqs].sort((a, b) => this.collator.compare(keys.get(a)!, keys.get(b)!) * direction);
  }

  private matchesChainedFilter(resource: Resource, chain: ChainedFilter): boolean {
    const references = evalFhirPath(chain.expression, resource) as (Reference | undefined)[];
    for (const reference of references) {
      const [refType, refId] = reference?.reference?.split('/') ?? [];
      if (refType !== chain.targetType || !refId) continue;
      const row = this.store.stmt('SELECT content FROM resource WHERE type = ? AND id = ?').get(refType, refId) as
        { content: string } | undefined;
      if (row && matchesSearchRequest(JSON.parse(row.content) as Resource, chain.chained)) return true;
    }
    return false;
  }
}
