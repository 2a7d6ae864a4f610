import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { batchResult, getEntry, type FhirClient } from './fhir-client';

export interface NamedSearch {
  name: string;
  resourceType: string;
  params: Record<string, string>;
}

const NO_MATCHES: Bundle = { resourceType: 'Bundle', type: 'searchset', total: 0 };

/** Several searches in one batch (one round trip); each searchset Bundle under its name. */
export async function searchEach(fhir: FhirClient, searches: NamedSearch[]): Promise<Record<string, Bundle>> {
  return searchResults(await fhir.batch(searchEntries(searches)), searches);
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
