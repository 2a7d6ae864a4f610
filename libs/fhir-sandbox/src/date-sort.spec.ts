import type { DatabaseSync } from 'node:sqlite';
import { parseSearchRequest } from '@medplum/core';
import { indexFhirDefinitions } from '@kc/fhir-definitions';
import * as dateSort from './date-sort';
import type { DateSort, Sql } from './date-sort';
import type { IndexedFilter } from './search-filters';
import { SqliteRepository } from './sqlite-repository';
import { BOUND_LIMIT } from './sql-limit';

/**
 * The query plans of a date-sorted page, on the store's own schema: SQLite's plan, not the row counts of a test,
 * decides whether a page costs what it shows. Every per-resource lookup must go through a (seq, p) index: with
 * `date_lo` or `date_hi` instead, each candidate rescans a parameter's rows (a patient's sorted page over 100k Tasks
 * took 317 ms, not 0.3 ms).
 */
describe('page plans', () => {
  let repo: SqliteRepository;
  let db: DatabaseSync;
  beforeAll(() => {
    indexFhirDefinitions();
    repo = new SqliteRepository(':memory:');
    db = (repo as unknown as { db: DatabaseSync }).db;
  });
  afterAll(() => repo.close());

  const plan = (query: Sql, extra: unknown[] = []) =>
    (
      db.prepare(`EXPLAIN QUERY PLAN ${query.sql}`).all(...(query.params as never[]), ...(extra as never[])) as {
        detail: string;
      }[]
    ).map((row) => row.detail);
  const sort: DateSort = { key: 'Task:authored-on', descending: true, lastUpdated: false, spanMs: Infinity };
  const status: IndexedFilter = { table: 'token', key: 'Task:status', where: 'x.value = ?', params: ['requested'] };
  const since: IndexedFilter = { table: 'date', key: 'Task:_lastUpdated', where: 'x.hi >= ?', params: ['2027'] };
  const lookups = (details: string[]) => details.filter((d) => /^SEARCH (x|d2) /.test(d));

  it('a walk reads the sort parameter in index order and checks each resource by its (seq, p) rows', () => {
    const details = plan(dateSort.pageSql(dateSort.valuedSegment('Task', [status, since], sort)), [20, 0]);
    expect(details).toContain('SEARCH d USING INDEX date_lo (p=?)');
    expect(details.some((d) => /TEMP B-TREE FOR ORDER BY/.test(d))).toBe(false);
    expect(lookups(details).length).toBe(3);
    for (const d of lookups(details)) expect(d).toMatch(/USING (COVERING )?INDEX (date|token)_seq \(seq=\? AND p=\?\)/);
  });

  it("a walk seeks to its own filter's bounds in the index, a lower one as far as the parameter's values span", () => {
    const lastUpdated: DateSort = { key: 'Task:_lastUpdated', descending: false, lastUpdated: true, spanMs: 1000 };
    const after: IndexedFilter = { ...since, loWithin: (spanMs) => ({ min: spanMs < 1e10 ? '2026' : undefined }) };
    const details = plan(dateSort.pageSql(dateSort.valuedSegment('Task', [after], lastUpdated)), [20, 0]);
    expect(details).toContain('SEARCH d USING INDEX date_lo (p=? AND lo>?)');
    const authored = { ...after, key: 'Task:authored-on' };
    const walk = (spanMs: number) =>
      plan(
        dateSort.pageSql(dateSort.valuedSegment('Task', [authored], { ...sort, descending: false, spanMs })),
        [20, 0],
      );
    expect(walk(7 * 86_400_000)).toContain('SEARCH d USING INDEX date_lo (p=? AND lo>?)');
    // Values without a bounded span (an open-ended period): the filter is checked row by row.
    expect(walk(Infinity)).toContain('SEARCH d USING INDEX date_lo (p=?)');
    // Another parameter's filter never bounds the walk.
    const other = plan(dateSort.pageSql(dateSort.valuedSegment('Task', [after], { ...sort, spanMs: 1000 })), [20, 0]);
    expect(other).toContain('SEARCH d USING INDEX date_lo (p=?)');
  });

  it("a filter's few candidates get their sort key by (seq, p)", () => {
    const details = plan({
      sql: `SELECT ${dateSort.sortKeyColumns(sort)} FROM resource r WHERE r.type = ?`,
      params: [sort.key, 'Task'],
    });
    expect(lookups(details)).toEqual(['SEARCH x USING INDEX date_seq (seq=? AND p=?)']);
  });

  it('puts candidates in sort order: by key, none last ascending and first descending, ties by insertion', () => {
    const rows = [
      { seq: 4, k: '2027-01-02T00:00:00.000Z' },
      { seq: 1, k: null },
      { seq: 2, k: '2027-01-01T00:00:00.000Z' },
      { seq: 3, k: '2027-01-02T00:00:00.000Z' },
      { seq: 5, k: null },
    ];
    expect(dateSort.inSortOrder(rows, { ...sort, descending: false })).toEqual([2, 3, 4, 1, 5]);
    expect(dateSort.inSortOrder(rows, { ...sort, descending: true })).toEqual([1, 5, 3, 4, 2]);
  });

  it('an unsorted or _id-sorted page of a broad search walks the type in order: no sort of every match', async () => {
    const store = new SqliteRepository(':memory:');
    const storeDb = (store as unknown as { db: DatabaseSync }).db;
    try {
      await store.withTransaction(async () => {
        for (let i = 0; i < 600; i++)
          await store.createResource({ resourceType: 'Task', status: 'requested', intent: 'plan' });
      });
      await store.indexParameters('Task', ['status']);
      const prepared: string[] = [];
      const prepare = storeDb.prepare.bind(storeDb);
      jest.spyOn(storeDb, 'prepare').mockImplementation((sql: string) => {
        prepared.push(sql);
        return prepare(sql);
      });
      // The page's plan: how its rows are found, and no sort of every match.
      const pagePlan = async (query: string) => {
        prepared.length = 0;
        expect((await store.search(parseSearchRequest(query))).entry).toHaveLength(20);
        const page = prepared.find((sql) => sql.includes(`${BOUND_LIMIT} OFFSET ?`))!;
        const details = (
          storeDb
            .prepare(`EXPLAIN QUERY PLAN ${page}`)
            .all(...(Array(page.split('?').length - 1).fill('x') as never[])) as {
            detail: string;
          }[]
        ).map((row) => row.detail);
        expect(details.some((d) => /TEMP B-TREE/.test(d))).toBe(false);
        return details;
      };
      for (const query of ['Task?status=requested&_count=20', 'Task?_count=20'])
        expect(await pagePlan(query)).toContain('SCAN r');
      // By _id: the (type, id) index in order, either way.
      for (const query of ['Task?_sort=_id&_count=20', 'Task?status=requested&_sort=-_id&_count=20'])
        expect((await pagePlan(query))[0]).toMatch(/^SEARCH r USING (COVERING )?INDEX resource_type_id \(type=\?\)$/);
    } finally {
      store.close();
    }
  });

  it('resources without the value are walked from their absent rows, in insertion order, not found by a scan', () => {
    const details = plan(dateSort.pageSql(dateSort.missingSegment('Task', [status], sort)), [20, 0]);
    expect(details[0]).toMatch(/^SEARCH a USING (COVERING )?INDEX absent_p \(p=\?\)$/);
    expect(details.some((d) => /^SCAN|TEMP B-TREE/.test(d))).toBe(false);
    expect(lookups(details)).toEqual(['SEARCH x USING INDEX token_seq (seq=? AND p=?)']);
  });
});
