import type { BundleEntry, Subscription } from '@medplum/fhirtypes';
import type { FhirClient } from '@kc/fhir';
import { ownSubscriptionChanges, subscriptionsFor } from './fhir-subscriptions';

/**
 * Subscribes the service's webhook to the embedded store's changes, Medplum's way (the store runs Subscriptions as
 * Medplum does): what `npm run fhir:subscriptions -- medplum ... --create` does for a real server, at every start,
 * since the webhook's address and secret may differ from the last. One transaction: all of them or none.
 */
export async function subscribeToEmbeddedStore(
  fhir: FhirClient,
  input: { endpoint: string; secret: string },
): Promise<{ created: number; updated: number; removed: number }> {
  const existing = await fhir.searchAll<Subscription>('Subscription', { _count: 1000 });
  const { create, update, remove } = ownSubscriptionChanges(
    existing,
    subscriptionsFor({ ...input, flavour: 'medplum' }),
  );
  const entries: BundleEntry[] = [
    ...create.map((resource) => ({ resource, request: { method: 'POST' as const, url: 'Subscription' } })),
    ...update.map((resource) => ({
      resource,
      request: { method: 'PUT' as const, url: `Subscription/${resource.id}` },
    })),
    ...remove.map((id) => ({ request: { method: 'DELETE' as const, url: `Subscription/${id}` } })),
  ];
  if (entries.length) await fhir.transaction(entries);
  return { created: create.length, updated: update.length, removed: remove.length };
}
