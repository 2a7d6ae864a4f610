import type { SQLInputValue } from 'node:sqlite';
import type { IndexedFilter } from './search-filters';
import { absentKey } from './search-index';
import { BOUND_LIMIT } from './sql-limit';

/**
 * `_sort` on a date parameter (`_lastUpdated`, `authored-on`, `date`) answered from the date index, so a sorted page
 * costs what the page holds, not what is stored: `Task?_sort=-_lastUpdated&_count=10` over 100k Tasks had parsed and
 * sorted every Task (0.7 s). Pure: the store (sqlite-repository.ts) runs the SQL.
 *
 * Order: chronological by the index's lower bounds (`lo`, UTC instants at ms precision), as Medplum's server sorts
 * its timestamp columns: ascending by a resource's earliest value, descending by its latest; resources without a
 * value after the others ascending, before them descending; ties in insertion order. MemoryRepository compares the
 * values' JSON text instead, which gives the same order for values written in one format (what the store writes,
 * what FHIR servers return) and differs only for mixed time zones or precisions, where chronological is right.
 */
export interface DateSort {
  /** The index key of the parameter (`Task:authored-on`). */
  key: string;
  descending: boolean;
  /** On `_lastUpdated`: every resource has a value (no search for the ones without). */
  lastUpdated: boolean;
  /**
   * The most any of the parameter's values spans (`hi - lo`, ms), or more: read from the index (the store's
   * `maxSpanMs`; a millisecond for `_lastUpdated` written to the millisecond), Infinity when no filter needs it.
   */
  spanMs: number;
}

export interface Sql {
  sql: string;
  params: SQLInputValue[];
}

/**
 * `AND EXISTS (...)` for each filter, on `r.seq`: how a candidate is checked against the filters that do not drive.
 * By the (seq, p) index, always: left to itself SQLite took `date_hi` for `x.hi >= ?` and scanned every row in the
 * range for each candidate (a date-sorted walk with a `_lastUpdated=ge` filter over 100k Tasks took seconds).
 */
export function existsAll(filters: IndexedFilter[]): Sql {
  return {
    sql: filters
      .map(
        (f) =>
          ` AND EXISTS (SELECT 1 FROM ${f.table} x INDEXED BY ${f.table}_seq WHERE x.seq = r.seq AND x.p = ? AND (${f.where}))`,
      )
      .join(''),
    params: filters.flatMap((f) => [f.key, ...f.params]),
  };
}

/**
 * Few candidates (a patient's, a plan's): each read with its sort key from the index (bind `sort.key` before the
 * candidate query's parameters), then put in order by `inSortOrder`. An SQL `ORDER BY` over the same keys cost five
 * times as much per search (~50 us against ~10 us for a patient's latest Observation).
 */
export function sortKeyColumns(sort: DateSort): string {
  const key = sort.descending ? 'max(x.lo)' : 'min(x.lo)';
  return `r.seq AS seq, (SELECT ${key} FROM date x INDEXED BY date_seq WHERE x.seq = r.seq AND x.p = ?) AS k`;
}

/** The candidates' seqs in sort order: by key (none last ascending, first descending), ties in insertion order. */
export function inSortOrder(rows: { seq: number; k: string | null }[], sort: DateSort): number[] {
  const direction = sort.descending ? -1 : 1;
  return [...rows]
    .sort((a, b) => {
      if (a.k === b.k) return a.seq - b.seq;
      if (a.k === null) return direction;
      if (b.k === null) return -direction;
      return (a.k < b.k ? -1 : 1) * direction;
    })
    .map((row) => row.seq);
}

/** The matches of a segment (`select`, with its `seq` column) and the order they are paged in. */
export interface Segment {
  select: Sql;
  order: string;
}

/** One page of a segment: `limit` and `offset` are bound last. */
export function pageSql(segment: Segment): Sql {
  return {
    sql: `${segment.select.sql} ORDER BY ${segment.order} ${BOUND_LIMIT} OFFSET ?`,
    params: segment.select.params,
  };
}

/** The segment's size. */
export function countOf(segment: Segment): Sql {
  return { sql: `SELECT count(*) AS n FROM (${segment.select.sql})`, params: segment.select.params };
}

/**
 * Many candidates: walk the parameter's index rows in order (`date_lo`), checking each resource's type and filters,
 * until the page is full. A resource with several values is met once, at its earliest (ascending) or latest
 * (descending) value.
 */
export function valuedSegment(resourceType: string, filters: IndexedFilter[], sort: DateSort): Segment {
  const exists = existsAll(filters);
  const earlier = sort.descending ? 'd2.lo > d.lo' : 'd2.lo < d.lo';
  const seek = seekBounds(filters, sort);
  return {
    select: {
      sql:
        `SELECT d.seq AS seq FROM date d CROSS JOIN resource r ON r.seq = d.seq WHERE d.p = ?${seek.sql} AND r.type = ?` +
        exists.sql +
        ` AND NOT EXISTS (SELECT 1 FROM date d2 INDEXED BY date_seq WHERE d2.seq = d.seq AND d2.p = d.p AND (${earlier} OR ` +
        '(d2.lo = d.lo AND d2.rowid < d.rowid)))',
      params: [sort.key, ...seek.params, resourceType, ...exists.params],
    },
    order: `d.lo${sort.descending ? ' DESC' : ''}, d.seq`,
  };
}

/**
 * Where a walk can start and stop: the sort parameter's own filters bound the rows' `lo` (search-filters.ts
 * `loWithin`), an upper bound always, a lower one by the parameter's widest value. The `_lastUpdated` pages of the
 * procedure poller and an EHR's sync (`_lastUpdated=gt<cursor>`), and `authored-on=ge<date>&_sort=authored-on`,
 * no longer read every row before the bound and fail it (~40-50 ms per page over 100k Tasks).
 */
function seekBounds(filters: IndexedFilter[], sort: DateSort): Sql {
  const sql: string[] = [];
  const params: SQLInputValue[] = [];
  for (const f of filters) {
    if (f.table !== 'date' || f.key !== sort.key || !f.loWithin) continue;
    const { min, max } = f.loWithin(sort.spanMs);
    if (min !== undefined) {
      sql.push(' AND d.lo >= ?');
      params.push(min);
    }
    if (max !== undefined) {
      sql.push(' AND d.lo <= ?');
      params.push(max);
    }
  }
  return { sql: sql.join(''), params };
}

/**
 * The matches without a value for the sort parameter, in insertion order: walked from the parameter's `absent` rows
 * (search-index.ts), not found by reading every resource of the type (29 ms over 100k Tasks for a descending sort,
 * which puts them first).
 */
export function missingSegment(resourceType: string, filters: IndexedFilter[], sort: DateSort): Segment {
  const exists = existsAll(filters);
  return {
    select: {
      sql:
        'SELECT a.seq AS seq FROM absent a CROSS JOIN resource r ON r.seq = a.seq WHERE a.p = ? AND r.type = ?' +
        exists.sql,
      params: [absentKey(sort.key), resourceType, ...exists.params],
    },
    order: 'a.seq',
  };
}
