import {
  DEFAULT_MAX_SEARCH_COUNT,
  DEFAULT_SEARCH_COUNT,
  OperationOutcomeError,
  badRequest,
  splitN,
  type SearchRequest,
} from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';

/**
 * Paging as Medplum's server pages (packages/server/src/fhir/search.ts): `_offset` up to its `maxSearchOffset`
 * (10,000 by default), and `_cursor` links for a search sorted by `_lastUpdated` ascending, which clients follow
 * to any depth at the cost of one page. The embedded store answers both the same way, so that the service's own
 * full reads (the worklist reconciliation, the overdue sweep) are written against the limit a real Medplum has,
 * and a deep page here costs what the page holds. Pure: the store (sqlite-search.ts) runs the searches.
 */

/** Medplum's server refuses a larger `_offset` (its config's maxSearchOffset default). */
export const MEDPLUM_MAX_SEARCH_OFFSET = 10_000;

/**
 * A search's page size as Medplum's server sets it (searchImpl): 20 when the search names none, at most 1,000. A
 * client that leaves out `_count` gets a page and a next link, not every match (which grew with the store, and let
 * a caller rely on an answer no Medplum or HAPI server gives).
 */
export function withMedplumPageSize<T extends Resource>(searchRequest: SearchRequest<T>): SearchRequest<T> {
  const count =
    searchRequest.count === undefined ? DEFAULT_SEARCH_COUNT : Math.min(searchRequest.count, DEFAULT_MAX_SEARCH_COUNT);
  return count === searchRequest.count ? searchRequest : { ...searchRequest, count };
}

/** Where the next page starts: at `nextInstant`, less the resources of that instant already given. */
export interface Cursor {
  nextInstant: string;
  excludedIds: string[];
}

/** Medplum's answer to an `_offset` past the limit: 400, naming both numbers. */
export function assertOffsetWithin(offset: number, max: number): void {
  if (offset > max)
    throw new OperationOutcomeError(badRequest(`Search offset exceeds maximum (got ${offset}, max ${max})`));
}

/**
 * Medplum's rule for cursor links: no `_offset`, a page of 20 or more (room for the resources sharing an instant),
 * and one sort, `_lastUpdated` ascending.
 */
export function pagesByCursor(searchRequest: SearchRequest): boolean {
  const rules = searchRequest.sortRules;
  return (
    !searchRequest.offset &&
    // The store gives every search a page size before it gets here (withMedplumPageSize); without one, no cursor.
    searchRequest.count !== undefined &&
    searchRequest.count >= 20 &&
    rules?.length === 1 &&
    rules[0].code === '_lastUpdated' &&
    !rules[0].descending
  );
}

/**
 * Medplum's cursor formats: `2-<ms>[-<id>,<id>...]` (the ids already given at that instant) and the older
 * `1-<ms>-<nextId>` (the id unused). Anything else is refused with a 400 (Medplum ignores it and answers the first
 * page, which a client following links never asks for).
 */
export function parseCursor(value: string): Cursor {
  const [version, ms, rest] = splitN(value, '-', 3) as [string, string | undefined, string | undefined];
  const time = Number(ms);
  const valid =
    (version === '2' || (version === '1' && rest)) &&
    /^\d{1,15}$/.test(ms ?? '') &&
    !Number.isNaN(new Date(time).getTime());
  if (!valid) throw new OperationOutcomeError(badRequest(`Invalid _cursor: ${value.slice(0, 64)}`));
  return {
    nextInstant: new Date(time).toISOString(),
    excludedIds: version === '2' && rest ? rest.split(',').filter(Boolean) : [],
  };
}

export function formatCursor(cursor: Cursor): string {
  const ms = new Date(cursor.nextInstant).getTime();
  return cursor.excludedIds.length ? `2-${ms}-${cursor.excludedIds.join(',')}` : `2-${ms}`;
}

/**
 * The cursor of the page after `page`, which starts at `next`: its instant, less this page's resources of that
 * instant, and the ones the previous cursor left out when it named the same instant (a run of resources sharing one
 * instant longer than a page, where Medplum's server answers 500 "Cursor fails to make progress").
 */
export function cursorAfter(page: Resource[], next: Resource, previous?: Cursor): Cursor {
  const nextInstant = next.meta?.lastUpdated as string;
  const same = (instant: string | undefined) =>
    instant !== undefined && Date.parse(instant) === Date.parse(nextInstant);
  const excludedIds = page.filter((r) => same(r.meta?.lastUpdated)).map((r) => r.id as string);
  if (previous && same(previous.nextInstant)) excludedIds.unshift(...previous.excludedIds);
  return { nextInstant, excludedIds };
}
