import { Operator, parseSearchRequest, resourceMatchesSubscriptionCriteria } from '@medplum/core';
import type { FhirRepository } from '@medplum/fhir-router';
import type { Resource, Subscription } from '@medplum/fhirtypes';
import {
  RestHookDeliveries,
  type ActiveSubscription,
  type DeliveryStats,
  type RestHookDeliveryOptions,
} from './rest-hook-deliveries';
import type { StoreChange } from './store-change';

export interface NotifierStats extends DeliveryStats {
  /** Active rest-hook Subscriptions. */
  subscriptions: number;
}

export interface SubscriptionNotifierOptions extends Omit<RestHookDeliveryOptions, 'repo' | 'subscription'> {
  /** Where the Subscriptions are read at start, a previous version read, and a retried resource checked current. */
  repo: Pick<FhirRepository, 'searchResources' | 'readResource' | 'readHistory'>;
}

/**
 * The embedded store's FHIR Subscriptions, rest-hook only, as Medplum's server runs them: each committed create,
 * update or delete is matched against the active Subscriptions at that moment (Medplum's own
 * resourceMatchesSubscriptionCriteria: criteria, the supported-interaction extension, FHIRPath criteria), and each
 * match is POSTed (rest-hook-request.ts) at least once, unordered, retried with exponential backoff. A deletion is
 * matched against the version it removed. Kept in memory: a notification not yet delivered when the store stops is
 * lost, as it would be for a receiver that was down past its attempts; those who subscribe also poll.
 */
export class SubscriptionNotifier {
  private readonly byType = new Map<string, Map<string, ActiveSubscription>>();
  private readonly byId = new Map<string, ActiveSubscription>();
  private matching: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly deliveries: RestHookDeliveries;

  constructor(private readonly options: SubscriptionNotifierOptions) {
    this.deliveries = new RestHookDeliveries({ ...options, subscription: (id) => this.byId.get(id) });
  }

  /** Reads the active Subscriptions already stored (before the store takes requests). */
  async start(): Promise<void> {
    const stored = await this.options.repo.searchResources<Subscription>({
      resourceType: 'Subscription',
      filters: [{ code: 'status', operator: Operator.EQUALS, value: 'active' }],
      count: 1000,
    });
    for (const subscription of stored) this.keep(subscription);
  }

  /** A commit's changes (SqliteRepository's onCommitted): matched in commit order, delivered as they can be. */
  changed(changes: StoreChange[]): void {
    if (this.closed) return;
    this.matching = this.matching.then(() => this.match(changes)).catch(() => undefined);
  }

  /** Resolves once every change told so far has been matched (its notifications queued). */
  matched(): Promise<void> {
    return this.matching;
  }

  stats(): NotifierStats {
    return { ...this.deliveries.stats(), subscriptions: this.byId.size };
  }

  /** Stops: queued notifications and retries are dropped, those in flight aborted. */
  close(): void {
    this.closed = true;
    this.deliveries.close();
  }

  private async match(changes: StoreChange[]): Promise<void> {
    for (const change of changes) {
      let resource: Resource | undefined;
      const parse = () => (resource ??= JSON.parse(change.content) as Resource);
      // A Subscription written joins (or leaves) the active ones before its own change is matched, as on Medplum.
      if (change.resourceType === 'Subscription') {
        if (change.interaction === 'delete') this.forget(change.id);
        else this.keep(parse() as ActiveSubscription);
      }
      const candidates = this.byType.get(change.resourceType);
      if (!candidates?.size) continue;
      for (const subscription of candidates.values()) {
        let matches: boolean;
        try {
          matches = await resourceMatchesSubscriptionCriteria({
            resource: parse(),
            subscription,
            context: { interaction: change.interaction },
            getPreviousResource: () => this.previousVersion(change, parse().meta?.versionId),
          });
        } catch {
          // Criteria this server cannot evaluate match nothing (Medplum logs and goes on).
          matches = false;
        }
        if (matches)
          this.deliveries.add({
            subscriptionId: subscription.id,
            change,
            versionId: parse().meta?.versionId,
            attempt: 1,
          });
      }
    }
  }

  private keep(subscription: ActiveSubscription): void {
    this.forget(subscription.id);
    if (subscription.status !== 'active' || subscription.channel?.type !== 'rest-hook') return;
    let resourceType: string;
    try {
      resourceType = parseSearchRequest(subscription.criteria ?? '').resourceType;
    } catch {
      return;
    }
    this.byId.set(subscription.id, subscription);
    const ofType = this.byType.get(resourceType) ?? new Map<string, ActiveSubscription>();
    ofType.set(subscription.id, subscription);
    this.byType.set(resourceType, ofType);
  }

  private forget(id: string): void {
    this.byId.delete(id);
    for (const ofType of this.byType.values()) ofType.delete(id);
  }

  /** The version this update replaced (only a Subscription with FHIRPath criteria asks), from the history. */
  private async previousVersion(change: StoreChange, versionId: string | undefined): Promise<Resource | undefined> {
    if (change.interaction !== 'update') return undefined;
    const history = await this.options.repo.readHistory(change.resourceType, change.id).catch(() => undefined);
    const versions = history?.entry ?? [];
    // Newest first: the one after this change's version (later updates may have come since).
    const at = versions.findIndex((e) => e.resource?.meta?.versionId === versionId);
    return at >= 0 ? versions[at + 1]?.resource : undefined;
  }
}
