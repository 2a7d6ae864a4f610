import type { Bundle, ResourceType } from '@medplum/fhirtypes';
import type { FhirClient } from './fhir-client';

export interface NamedSearch {
  name: string;
  resourceType: string;
  params: Record<string, string>;
}

/** Runs several searches at once and returns each searchset Bundle under its name. */
export async function searchEach(fhir: FhirClient, searches: NamedSearch[]): Promise<Record<string, Bundle>> {
  const bundles = await Promise.all(searches.map((s) => fhir.search(s.resourceType as ResourceType, s.params)));
  return Object.fromEntries(searches.map((s, i) => [s.name, bundles[i]]));
}
