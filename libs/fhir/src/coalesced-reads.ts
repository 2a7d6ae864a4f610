import type { Bundle, BundleEntry, Resource, ResourceType } from '@medplum/fhirtypes';
import { MicroBatcher } from '@kc/common';
import { batchResult, toQuery, type FhirClient, type SearchParams } from './fhir-client';
import { versionIdFromETag } from './etag';
import { FhirNotFoundError } from './fhir-errors';

type Get =
  | { kind: 'read'; resourceType: ResourceType; id: string }
  | { kind: 'search'; resourceType: ResourceType; params: SearchParams };

/**
 * Reads and searches that arrive at once (clinicians' decisions, each reading its Task) go to the server as one
 * batch of GETs; a lone one goes at once, as a plain read or search. Each caller gets what its own request would
 * have: the resource with its version (FhirNotFoundError for 404/410) or the searchset, the server's error for any
 * other failed entry; a batch that fails as a whole fails every request in it, as an unreachable server would each.
 */
export class CoalescedReads {
  private readonly batches: MicroBatcher<Get, Resource>;

  constructor(
    private readonly fhir: FhirClient,
    options: { maxBatch: number; maxInFlight: number },
  ) {
    this.batches = new MicroBatcher((gets) => this.send(gets), options);
  }

  read<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T> {
    return this.batches.submit({ kind: 'read', resourceType, id }) as Promise<T>;
  }

  search<T extends Resource>(resourceType: ResourceType, params: SearchParams): Promise<Bundle<T>> {
    return this.batches.submit({ kind: 'search', resourceType, params }) as Promise<Bundle<T>>;
  }

  private async send(gets: Get[]): Promise<PromiseSettledResult<Resource>[]> {
    if (gets.length === 1) {
      const [get] = gets;
      return [
        await settled(() =>
          get.kind === 'read'
            ? this.fhir.read(get.resourceType, get.id)
            : this.fhir.search(get.resourceType, get.params),
        ),
      ];
    }
    const answer = await this.fhir.batch(gets.map((get) => ({ request: { method: 'GET', url: urlOf(get) } })));
    return Promise.all(gets.map((get, i) => settled(() => answerOf(get, answer.entry?.[i]))));
  }
}

function urlOf(get: Get): string {
  return get.kind === 'read'
    ? `${get.resourceType}/${encodeURIComponent(get.id)}`
    : `${get.resourceType}${toQuery(get.params)}`;
}

function answerOf(get: Get, entry: BundleEntry | undefined): Resource {
  const resource = batchResult<Resource>(entry, get.resourceType);
  if (!resource) throw new FhirNotFoundError(404, undefined, `FHIR GET ${get.resourceType} answered 404`);
  if (get.kind === 'search') return resource;
  const versionId = versionIdFromETag(entry?.response?.etag);
  return versionId && !resource.meta?.versionId ? { ...resource, meta: { ...resource.meta, versionId } } : resource;
}

async function settled<T>(get: () => T | Promise<T>): Promise<PromiseSettledResult<T>> {
  try {
    return { status: 'fulfilled', value: await get() };
  } catch (reason) {
    return { status: 'rejected', reason };
  }
}
