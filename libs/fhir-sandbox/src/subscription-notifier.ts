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

export interface SubscriptionNotifierOptions extends Omit<
  RestHookDeliveryOptions,
  'repo' | 'subscription' | 'settled'
> {
  /** Where the Subscriptions are read at start, a previous version read, and a retried resource checked current. */
  repo: Pick<FhirRepository, 'searchResources' | 'readResource' | 'readHistory'>;
  /**
   * The store's outbox (SqliteRepository): the changes a previous run left unsent, told again at start, and each
   * change's row removed once its notifications are settled. None: notifications are kept in memory only.
   */
  outbox?: { outboxed(): StoreChange[]; outboxDone(ids: number[]): Promise<void> };
  /**
   * How long what the last run left waits at start for its subscriber to re-point its Subscriptions (a new address or
   * secret); sent at once when a Subscription is written first (default 10 s).
   */
  replayDelayMs?: number;
}

/** How long settled outbox rows wait to be removed together (one store write for many). */
const OUTBOX_FLUSH_MS = 50;

/**
 * The embedded store's FHIR Subscriptions, rest-hook only, as Medplum's server runs them: each committed create,
 * update or delete is matched against the active Subscriptions at that moment (Medplum's own
 * resourceMatchesSubscriptionCriteria: criteria, the supported-interaction extension, FHIRPath criteria), and each
 * match is POSTed (rest-hook-request.ts) at least once, unordered, retried with exponential backoff. A deletion is
 * matched against the version it removed. A change of a type subscribed to is written to the store's outbox in the
 * commit that made it, and leaves it once its notifications are sent or given up: one not sent when the store stops
 * (or crashes) is sent at the next start (since session 38; before, it was lost with the process, as Medplum keeps
 * its notification jobs in Redis across a restart).
 */
export class SubscriptionNotifier {
  private readonly byType = new Map<string, Map<string, ActiveSubscription>>();
  private readonly byId = new Map<string, ActiveSubscription>();
  private matching: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly deliveries: RestHookDeliveries;
  /** Outbox rows with notifications still to settle, by row id: how many. */
  private readonly unsettled = new Map<number, number>();
  private settledRows: number[] = [];
  private flushTimer?: NodeJS.Timeout;
  /** What the last run left, until it is sent (replay). */
  private left?: StoreChange[];
  private replayTimer?: NodeJS.Timeout;

  constructor(private readonly options: SubscriptionNotifierOptions) {
    this.deliveries = new RestHookDeliveries({
      ...options,
      subscription: (id) => this.byId.get(id),
      settled: (delivery) => this.settledOne(delivery.change.outboxId),
    });
  }

  /** Whether a change of this type is matched by any active Subscription's type: then it goes to the outbox. */
  wants(resourceType: string): boolean {
    return (this.byType.get(resourceType)?.size ?? 0) > 0;
  }

  /** Reads the active Subscriptions already stored (before the store takes requests). */
  async start(): Promise<void> {
    const stored = await this.options.repo.searchResources<Subscription>({
      resourceType: 'Subscription',
      filters: [{ code: 'status', operator: Operator.EQUALS, value: 'active' }],
      count: 1000,
    });
    for (const subscription of stored) this.keep(subscription);
    // What the last run committed and did not finish telling (stopped, or crashed), told again, at least once: once its
    // subscriber has re-pointed its Subscriptions (a service subscribes at every start, perhaps at another address or
    // with another secret, which the old ones would be refused with), or after a while when it has nothing to change.
    const left = this.options.outbox?.outboxed() ?? [];
    if (left.length) {
      this.left = left;
      this.replayTimer = setTimeout(() => this.replay(), this.options.replayDelayMs ?? 10_000);
      this.replayTimer.unref();
    }
  }

  private replay(): void {
    clearTimeout(this.replayTimer);
    const left = this.left;
    this.left = undefined;
    if (!left || this.closed) return;
    this.options.log('info', 'Subscription notifications left by the last run sent again', { changes: left.length });
    this.changed(left);
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

  /**
   * Stops: queued notifications and retries are dropped, those in flight aborted (their outbox rows stay, for the next
   * start); rows already settled are removed first.
   */
  close(): void {
    this.closed = true;
    clearTimeout(this.replayTimer);
    this.flush();
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
        // Re-pointed: what the last run left goes to where they point now (matched after this commit's changes).
        if (this.left) queueMicrotask(() => this.replay());
      }
      const candidates = this.byType.get(change.resourceType);
      const matched: ActiveSubscription[] = [];
      for (const subscription of candidates?.values() ?? []) {
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
        if (matches) matched.push(subscription);
      }
      // Counted before any is queued: one settled at once (the queue full) must not take the row with the others due.
      if (change.outboxId !== undefined && matched.length) this.unsettled.set(change.outboxId, matched.length);
      for (const subscription of matched)
        this.deliveries.add({
          subscriptionId: subscription.id,
          change,
          versionId: parse().meta?.versionId,
          attempt: 1,
        });
      if (!matched.length) this.settledOne(change.outboxId, 0);
    }
  }

  /** A notification of an outbox row settled (or, `by` 0, none to send): the row goes once none is left. */
  private settledOne(outboxId: number | undefined, by = 1): void {
    if (outboxId === undefined) return;
    const left = (this.unsettled.get(outboxId) ?? 0) - by;
    if (left > 0) return void this.unsettled.set(outboxId, left);
    this.unsettled.delete(outboxId);
    this.settledRows.push(outboxId);
    this.flushTimer ??= setTimeout(() => this.flush(), OUTBOX_FLUSH_MS).unref();
  }

  /** Settled rows out of the outbox, in one write (a failure leaves them to be told again at the next start). */
  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const rows = this.settledRows;
    this.settledRows = [];
    if (rows.length) this.options.outbox?.outboxDone(rows).catch(() => undefined);
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
