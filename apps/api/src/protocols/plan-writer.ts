import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import {
  batchResult,
  CoalescedReads,
  CoalescedTransactions,
  FhirClient,
  FhirTransactionNotConfirmedError,
  matchesOf,
  SharedFhirRequests,
} from '@kc/fhir';
import { appliedEntries, type AppliedEntry, type ApplyResult } from '@kc/protocols';
import { PlanWriteLock } from './plan-write-lock';

/**
 * Writes an applied plan once, whole, in one transaction without conditional entries (round trips: a batch reading
 * which of its resources exist by their keys, one transaction creating the rest, a batch reading them back):
 * - once: under the plan's write lock, what exists is found by its key and not written again;
 * - whole: the transaction is all or nothing, every entry of its answer is checked, and the plan is read back; a
 *   plan that does not read back whole is written again once (only what is missing), then reported as a 502;
 * - any size: without conditional entries Medplum needs no SERIALIZABLE isolation, so its 8-entry limit for such
 *   transactions does not apply, and plans of different patients never conflict.
 */
@Injectable()
export class PlanWriter {
  /**
   * Plans written at once (a clinic enrolling many patients, an EHR's burst of $apply calls) share their requests:
   * one batch of their lookups, one transaction of their creates, one batch reading them back; each plan's creates
   * still all or nothing (CoalescedTransactions). At most 8 plans (~100 entries) per request.
   */
  private readonly reads: CoalescedReads;
  private readonly transactions: CoalescedTransactions;

  constructor(
    private readonly fhir: FhirClient,
    private readonly lock: PlanWriteLock,
    shared: SharedFhirRequests,
  ) {
    this.reads = shared.reads('plan-writes', { maxBatch: 8, maxInFlight: 2 });
    this.transactions = shared.transactions('plan-writes', { maxBatch: 8, maxInFlight: 2 });
  }

  async write(result: ApplyResult): Promise<Map<string, Resource>> {
    const entries = appliedEntries(result);
    const lockKey = createHash('sha256')
      .update(result.carePlan.ifNoneExist ?? result.carePlan.fullUrl)
      .digest('hex');
    return this.lock.around(lockKey, async () => {
      for (let attempt = 1; ; attempt++) {
        const written = await this.writeMissing(entries);
        const missing = await this.unreadable(written);
        if (!missing.length) return written;
        if (attempt === 2)
          throw new FhirTransactionNotConfirmedError(`the plan does not read back whole: ${missing.join(', ')}`);
      }
    });
  }

  /** Creates the entries not on the server yet; returns every entry's server copy by fullUrl. */
  private async writeMissing(entries: AppliedEntry[]): Promise<Map<string, Resource>> {
    const byFullUrl = await this.existing(entries);
    const missing = entries.filter((e) => !byFullUrl.has(e.fullUrl));
    if (!missing.length) return byFullUrl;
    // References to resources already on the server point at them; the rest resolve within the transaction.
    const known = new Map([...byFullUrl].map(([fullUrl, r]) => [fullUrl, `${r.resourceType}/${r.id}`]));
    const transaction: BundleEntry[] = missing.map((e) => ({
      fullUrl: e.fullUrl,
      resource: withReferences(e.resource, known),
      request: { method: 'POST', url: e.resource.resourceType },
    }));
    const response = await this.transactions.transaction(transaction);
    await Promise.all(
      (response.entry ?? []).map(async (entry, i) => {
        const resource = entry.resource ?? (await this.readLocation(entry.response?.location));
        if (resource) byFullUrl.set(transaction[i].fullUrl!, resource);
      }),
    );
    return byFullUrl;
  }

  /**
   * One batch: the entries' keys (their If-None-Exist criteria, `identifier=system|value`), one search per resource
   * type with the keys OR'd (`Task?identifier=k1,k2,...`): a plan's dozen resources cost the server a handful of
   * searches, not a dozen. Each entry takes the first resource carrying its key, as its own key search would; other
   * criteria get a search of their own.
   */
  private async existing(entries: AppliedEntry[]): Promise<Map<string, Resource>> {
    const lookups = keyLookups(entries);
    const found = new Map<string, Resource>();
    if (!lookups.length) return found;
    const answer = await this.reads.batch(lookups.map((l) => ({ request: { method: 'GET', url: l.url } })));
    lookups.forEach((lookup, i) => {
      // A failed lookup fails the write: taking it for "not there" would create the resource a second time.
      const matches = matchesOf(batchResult<Bundle>(answer.entry?.[i], `${lookup.type} by key`));
      for (const { entry, key } of lookup.entries) {
        const match = key ? matches.find((r) => keysOf(r).includes(key)) : matches[0];
        if (match?.id) found.set(entry.fullUrl, match);
      }
    });
    return found;
  }

  /**
   * One batch: every resource of the plan read back by id. Wrong: what does not answer 200, and what refers to a
   * CarePlan other than this plan's or to an unresolved placeholder (a server that lost part of a transaction).
   */
  private async unreadable(written: Map<string, Resource>): Promise<string[]> {
    const resources = [...written.values()];
    const refs = resources.map((r) => `${r.resourceType}/${r.id}`);
    const carePlan = refs.find((r) => r.startsWith('CarePlan/'));
    const answer = await this.reads.batch(refs.map((url) => ({ request: { method: 'GET', url } })));
    return refs.filter((ref, i) => {
      const entry = answer.entry?.[i];
      if (!entry?.response?.status?.startsWith('200') || !entry.resource) return true;
      return referencesOf(entry.resource).some(
        (r) => r.startsWith('urn:uuid:') || (r.startsWith('CarePlan/') && r !== carePlan && ref !== carePlan),
      );
    });
  }

  private async readLocation(location: string | undefined): Promise<Resource | undefined> {
    const match = location && /([A-Za-z]+)\/([^/]+)/.exec(location);
    return match ? this.fhir.read(match[1] as Resource['resourceType'], match[2]) : undefined;
  }
}

interface KeyLookup {
  type: string;
  url: string;
  /** With its key (`system|value`, lower-cased) when the search is shared by several entries. */
  entries: { entry: AppliedEntry; key?: string }[];
}

/** The searches that find the entries already written: key searches OR'd per type, anything else alone. */
function keyLookups(entries: AppliedEntry[]): KeyLookup[] {
  const lookups: KeyLookup[] = [];
  const keyed = new Map<string, { entry: AppliedEntry; key: string }[]>();
  for (const entry of entries) {
    if (!entry.ifNoneExist) continue;
    const type = entry.resource.resourceType;
    const key = /^identifier=([^&,\\]+\|[^&,\\]+)$/.exec(entry.ifNoneExist)?.[1];
    if (!key) {
      lookups.push({ type, url: `${type}?${entry.ifNoneExist}`, entries: [{ entry }] });
      continue;
    }
    const ofType = keyed.get(type) ?? [];
    ofType.push({ entry, key });
    keyed.set(type, ofType);
  }
  for (const [type, ofType] of keyed)
    lookups.push({
      type,
      // Room for every key twice over: a full page could hide a match.
      url: `${type}?identifier=${ofType.map((k) => k.key).join(',')}&_count=${2 * ofType.length + 10}`,
      entries: ofType.map(({ entry, key }) => ({ entry, key: decodeURIComponent(key).toLowerCase() })),
    });
  return lookups;
}

/** A resource's identifiers as `system|value`, lower-cased (a token search ignores case). */
function keysOf(resource: Resource): string[] {
  const identifiers = (resource as { identifier?: { system?: string; value?: string }[] }).identifier ?? [];
  return identifiers.map((i) => `${i.system ?? ''}|${i.value ?? ''}`.toLowerCase());
}

/** Every `reference` string in a resource. */
function referencesOf(resource: Resource): string[] {
  const found: string[] = [];
  JSON.stringify(resource, (key, value: unknown) => {
    if (key === 'reference' && typeof value === 'string') found.push(value);
    return value;
  });
  return found;
}

/** The resource with every reference to a known fullUrl replaced by the server reference. */
function withReferences<T extends Resource>(resource: T, known: Map<string, string>): T {
  if (!known.size) return resource;
  return JSON.parse(JSON.stringify(resource), (key, value: unknown) =>
    key === 'reference' && typeof value === 'string' && known.has(value) ? known.get(value) : value,
  ) as T;
}
