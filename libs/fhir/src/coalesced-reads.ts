import type { Bundle, BundleEntry, Resource, ResourceType } from '@medplum/fhirtypes';
import { MicroBatcher, settledOf, slicesOf, type MicroBatcherOptions } from '@kc/common';
import { batchResult, toQuery, type FhirClient, type SearchParams } from './fhir-client';
import { versionIdFromETag } from './etag';
import { FhirNotFoundError } from './fhir-errors';

type Get =
  | { kind: 'read'; resourceType: ResourceType; id: string }
  | { kind: 'search'; resourceType: ResourceType; params: SearchParams }
  | { kind: 'batch'; entries: BundleEntry[] };

/**
 * Reads, searches and read-only batches that arrive at once (clinicians' decisions, each reading its Task and its
 * patient's data) go to the server as one batch of GETs; a lone one goes at once, as it is. Each caller gets what its
 * own request would have: the resource with its version (FhirNotFoundError for 404/410), the searchset, or its
 * batch's own entries (each answered on its own, as in any batch), the server's error for any other failed entry; a
 * batch that fails as a whole fails every request in it, as an unreachable server would each.
 */
export class CoalescedReads {
  private readonly batches: MicroBatcher<Get, Resource>;

  constructor(
    private readonly fhir: FhirClient,
    options: MicroBatcherOptions,
    /** Told how many reads each request to the server carried. */
    private readonly observe: (event: { sent: number }) => void = () => {},
  ) {
    this.batches = new MicroBatcher((gets) => this.send(gets), options);
  }

  /** Calls waiting for a request to the server (a gauge for operators). */
  get waiting(): number {
    return this.batches.queued;
  }

  read<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T> {
    return this.batches.submit({ kind: 'read', resourceType, id }) as Promise<T>;
  }

  search<T extends Resource>(resourceType: ResourceType, params: SearchParams): Promise<Bundle<T>> {
    return this.batches.submit({ kind: 'search', resourceType, params }) as Promise<Bundle<T>>;
  }

  /** A batch of GETs (each entry answered on its own), sent with the others. */
  batch(entries: BundleEntry[]): Promise<Bundle> {
    if (entries.some((e) => e.request?.method !== 'GET')) throw new Error('only a batch of reads can be shared');
    return this.batches.submit({ kind: 'batch', entries }) as Promise<Bundle>;
  }

  private async send(gets: Get[]): Promise<PromiseSettledResult<Resource>[]> {
    this.observe({ sent: gets.length });
    if (gets.length === 1) return [await settledOf(() => this.alone(gets[0]))];
    const sent = gets.map(entriesOf);
    const answer = await this.fhir.batch(sent.flat());
    const parts = slicesOf(
      answer.entry ?? [],
      sent.map((entries) => entries.length),
    );
    return Promise.all(gets.map((get, i) => settledOf(() => answerOf(get, answer, parts[i]))));
  }

  private alone(get: Get): Promise<Resource> {
    if (get.kind === 'read') return this.fhir.read(get.resourceType, get.id);
    if (get.kind === 'search') return this.fhir.search(get.resourceType, get.params);
    return this.fhir.batch(get.entries);
  }
}

function entriesOf(get: Get): BundleEntry[] {
  if (get.kind === 'batch') return get.entries;
  const url =
    get.kind === 'read'
      ? `${get.resourceType}/${encodeURIComponent(get.id)}`
      : `${get.resourceType}${toQuery(get.params)}`;
  return [{ request: { method: 'GET', url } }];
}

/** A caller's answer from its part of the shared batch's entries. */
function answerOf(get: Get, answer: Bundle, part: BundleEntry[]): Resource {
  if (get.kind === 'batch') return { ...answer, entry: part };
  const [entry] = part;
  const resource = batchResult<Resource>(entry, get.resourceType);
  if (!resource) throw new FhirNotFoundError(404, undefined, `FHIR GET ${get.resourceType} answered 404`);
  if (get.kind === 'search') return resource;
  const versionId = versionIdFromETag(entry?.response?.etag);
  return versionId && !resource.meta?.versionId ? { ...resource, meta: { ...resource.meta, versionId } } : resource;
}
