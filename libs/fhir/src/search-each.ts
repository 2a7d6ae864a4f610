import type { Bundle, BundleEntry, Resource, ResourceType } from '@medplum/fhirtypes';
import {
  batchResult,
  getEntry,
  hasMorePages,
  includedOf,
  matchesOf,
  type FhirClient,
  type SearchParams,
} from './fhir-client';

export interface NamedSearch {
  name: string;
  resourceType: string;
  params: SearchParams;
  /** Every match is wanted: pages after the first are followed (withRemainingPages). */
  everyMatch?: boolean;
}

const NO_MATCHES: Bundle = { resourceType: 'Bundle', type: 'searchset', total: 0 };

/** Several searches in one batch (one round trip); each searchset Bundle under its name, whole where asked. */
export async function searchEach(fhir: FhirClient, searches: NamedSearch[]): Promise<Record<string, Bundle>> {
  return (await readAndSearchEach(fhir, [], searches)).found;
}

/**
 * Reads (`Type/id`, or any GET path such as `Task/1/_history`) and searches in one batch (one round trip, none when
 * there is nothing to ask): what each read answered, undefined when the server has none (404/410), and each search's
 * searchset under its name, whole where asked. Any other failure throws (batchResult), failing the whole read.
 */
export async function readAndSearchEach(
  fhir: FhirClient,
  reads: string[],
  searches: NamedSearch[],
): Promise<{ read: (Resource | undefined)[]; found: Record<string, Bundle> }> {
  if (!reads.length && !searches.length) return { read: [], found: {} };
  const answer = await fhir.batch([...reads.map((path) => getEntry(path)), ...searchEntries(searches)]);
  const read = reads.map((path, i) => batchResult<Resource>(answer.entry?.[i], path.split(/[/?]/)[0]));
  return { read, found: await withRemainingPages(fhir, searchResults(answer, searches, reads.length), searches) };
}

/** The searches as batch entries (`GET Type?params`), in order: to send with other entries in one batch. */
export function searchEntries(searches: NamedSearch[]): BundleEntry[] {
  return searches.map((s) => getEntry(s.resourceType, s.params));
}

/**
 * Each search's searchset from a batch answer, under its name; the searches' entries start at `from`. A search
 * answered 404/410 has no matches; any other failure throws (batchResult), failing the whole read.
 */
export function searchResults(answer: Bundle, searches: NamedSearch[], from = 0): Record<string, Bundle> {
  return Object.fromEntries(
    searches.map((s, i) => [s.name, batchResult<Bundle>(answer.entry?.[from + i], s.resourceType) ?? NO_MATCHES]),
  );
}

/**
 * The searches that want every match and were answered with a next page, read whole by following the server's next
 * links (a round trip more, only then); the others as they are. A batch answers each search with its first page.
 */
export async function withRemainingPages(
  fhir: FhirClient,
  results: Record<string, Bundle>,
  searches: NamedSearch[],
): Promise<Record<string, Bundle>> {
  const whole = await Promise.all(
    searches.map(async (s): Promise<[string, Bundle]> => {
      const first = results[s.name];
      if (!s.everyMatch || !hasMorePages(first)) return [s.name, first];
      return [s.name, await searchWhole(fhir, s.resourceType as ResourceType, s.params)];
    }),
  );
  return Object.fromEntries(whole);
}

/**
 * Every match of a search, the server's next links followed, as one searchset Bundle; the resources each page
 * `_include`d come along (once each), marked as includes.
 */
export async function searchWhole(fhir: FhirClient, resourceType: ResourceType, params: SearchParams): Promise<Bundle> {
  const entry: BundleEntry[] = [];
  const included = new Set<string>();
  for await (const page of fhir.searchPages(resourceType, params)) {
    for (const resource of matchesOf(page)) entry.push({ resource, search: { mode: 'match' } });
    for (const resource of includedOf(page)) {
      const key = `${resource.resourceType}/${resource.id}`;
      if (included.has(key)) continue;
      included.add(key);
      entry.push({ resource, search: { mode: 'include' } });
    }
  }
  return { resourceType: 'Bundle', type: 'searchset', entry };
}
