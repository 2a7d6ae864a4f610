import { OperationOutcomeError, parseSearchRequest } from '@medplum/core';
import type { Task } from '@medplum/fhirtypes';
import {
  assertOffsetWithin,
  cursorAfter,
  formatCursor,
  pagesByCursor,
  parseCursor,
  withMedplumPageSize,
} from './search-paging';

const at = (id: string, lastUpdated: string): Task => ({
  resourceType: 'Task',
  id,
  status: 'draft',
  intent: 'plan',
  meta: { lastUpdated },
});

describe('search paging (as Medplum pages)', () => {
  it("sets a search's page size as Medplum's server does: 20 when it names none, at most 1,000", () => {
    const size = (query: string) => withMedplumPageSize(parseSearchRequest(`Task?${query}`)).count;
    expect(size('status=draft')).toBe(20);
    expect(size('_count=0')).toBe(0);
    expect(size('_count=200')).toBe(200);
    expect(size('_count=5000')).toBe(1000);
  });

  it('pages by cursor only a _lastUpdated-ascending search of 20 or more, without an offset', () => {
    const pages = (query: string) => pagesByCursor(parseSearchRequest(`Task?${query}`));
    expect(pages('_sort=_lastUpdated&_count=20')).toBe(true);
    expect(pages('status=draft&_sort=_lastUpdated&_count=1000')).toBe(true);
    expect(pages('_sort=_lastUpdated&_count=19')).toBe(false);
    expect(pages('_sort=-_lastUpdated&_count=20')).toBe(false);
    expect(pages('_sort=_lastUpdated,_id&_count=20')).toBe(false);
    expect(pages('_sort=_lastUpdated&_count=20&_offset=20')).toBe(false);
    expect(pages('_sort=_lastUpdated')).toBe(false);
    expect(pages('_count=20')).toBe(false);
  });

  it("reads Medplum's cursors and writes its v2 format", () => {
    expect(parseCursor('2-1798761600000')).toEqual({ nextInstant: '2027-01-01T00:00:00.000Z', excludedIds: [] });
    expect(parseCursor('2-1798761600000-a-1,b-2')).toEqual({
      nextInstant: '2027-01-01T00:00:00.000Z',
      excludedIds: ['a-1', 'b-2'],
    });
    expect(parseCursor('1-1798761600000-next')).toEqual({ nextInstant: '2027-01-01T00:00:00.000Z', excludedIds: [] });
    const cursor = { nextInstant: '2027-01-01T00:00:00.123Z', excludedIds: ['x', 'y'] };
    expect(parseCursor(formatCursor(cursor))).toEqual(cursor);
    for (const bad of ['', '2', '2-', '2-abc', '3-1798761600000', '1-1798761600000', '2-99999999999999999'])
      expect(() => parseCursor(bad)).toThrow(OperationOutcomeError);
  });

  it("leaves out the page's resources of the next instant, and carries them over a run longer than a page", () => {
    const page = [
      at('a', '2027-01-01T00:00:00.000Z'),
      at('b', '2027-01-01T00:00:01.000Z'),
      at('c', '2027-01-01T00:00:01.000Z'),
    ];
    const next = at('d', '2027-01-01T00:00:01.000Z');
    const first = cursorAfter(page, next);
    expect(first).toEqual({ nextInstant: '2027-01-01T00:00:01.000Z', excludedIds: ['b', 'c'] });
    // The next page was all of that instant too: its ids join the ones already left out.
    const second = cursorAfter([next, at('e', '2027-01-01T00:00:01.000Z')], at('f', '2027-01-01T00:00:01.000Z'), first);
    expect(second.excludedIds).toEqual(['b', 'c', 'd', 'e']);
    // A later instant starts afresh.
    expect(cursorAfter([at('f', '2027-01-01T00:00:01.000Z')], at('g', '2027-01-01T00:00:02.000Z'), second)).toEqual({
      nextInstant: '2027-01-01T00:00:02.000Z',
      excludedIds: [],
    });
  });

  it('refuses an offset past the maximum, naming both', () => {
    expect(() => assertOffsetWithin(10_000, 10_000)).not.toThrow();
    expect(() => assertOffsetWithin(10_001, 10_000)).toThrow('Search offset exceeds maximum (got 10001, max 10000)');
  });
});
