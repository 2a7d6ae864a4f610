import type { Procedure } from '@medplum/fhirtypes';
import { parseCursor, searchFrom, startCursor, takeFresh } from './poll-cursor';

const at = (id: string, lastUpdated: string): Procedure => ({
  resourceType: 'Procedure',
  id,
  status: 'completed',
  subject: {},
  meta: { lastUpdated },
});
const OVERLAP = 10_000;
const ids = (list: Procedure[]) => list.map((p) => p.id);

describe('poll cursor', () => {
  const start = startCursor(new Date('2027-01-01T10:00:00.000Z'));

  it('searches from the cursor minus the overlap window', () => {
    expect(searchFrom(start, OVERLAP)).toBe('2027-01-01T09:59:50.000Z');
  });

  it('takes resources stamped in the same millisecond as the cursor exactly once, across polls', () => {
    const first = takeFresh(start, [at('a', '2027-01-01T10:00:01.000Z'), at('b', '2027-01-01T10:00:01.000Z')], OVERLAP);
    expect(ids(first.fresh)).toEqual(['a', 'b']);
    // c was stamped in that same millisecond but committed after the first poll read.
    const second = takeFresh(
      first.next,
      [at('a', '2027-01-01T10:00:01Z'), at('b', '2027-01-01T10:00:01.000Z'), at('c', '2027-01-01T10:00:01.000Z')],
      OVERLAP,
    );
    expect(ids(second.fresh)).toEqual(['c']);
    expect(
      ids(
        takeFresh(second.next, [at('a', '2027-01-01T10:00:01.000Z'), at('c', '2027-01-01T10:00:01.000Z')], OVERLAP)
          .fresh,
      ),
    ).toEqual([]);
  });

  it('finds a resource stamped before the cursor but committed after it (within the overlap)', () => {
    const first = takeFresh(start, [at('a', '2027-01-01T10:00:05.000Z')], OVERLAP);
    const late = takeFresh(
      first.next,
      [at('late', '2027-01-01T10:00:02.000Z'), at('a', '2027-01-01T10:00:05.000Z')],
      OVERLAP,
    );
    expect(ids(late.fresh)).toEqual(['late']);
    expect(late.next.since).toBe('2027-01-01T10:00:05.000Z');
  });

  it('takes a resource again when it was updated (new lastUpdated); job ids and conditional creates absorb the repeat', () => {
    const first = takeFresh(start, [at('a', '2027-01-01T10:00:01.000Z')], OVERLAP);
    expect(ids(takeFresh(first.next, [at('a', '2027-01-01T10:00:03.000Z')], OVERLAP).fresh)).toEqual(['a']);
  });

  it('forgets ids older than the overlap window, so the cursor stays small', () => {
    const first = takeFresh(start, [at('old', '2027-01-01T10:00:01.000Z')], OVERLAP);
    const later = takeFresh(first.next, [at('new', '2027-01-01T10:05:00.000Z')], OVERLAP);
    expect(Object.keys(later.next.seen)).toEqual(['new']);
  });

  it('never moves backwards', () => {
    expect(takeFresh(start, [at('x', '2027-01-01T09:59:55.000Z')], OVERLAP).next.since).toBe(start.since);
  });

  it('reads the earlier {since, seenAtSince} shape and rejects garbage', () => {
    expect(parseCursor(JSON.stringify({ since: '2027-01-01T10:00:00.000Z', seenAtSince: ['a'] }))).toEqual({
      since: '2027-01-01T10:00:00.000Z',
      seen: { a: '2027-01-01T10:00:00.000Z' },
    });
    expect(parseCursor(JSON.stringify({ since: 'yesterday' }))).toBeUndefined();
    expect(parseCursor(null)).toBeUndefined();
  });
});
