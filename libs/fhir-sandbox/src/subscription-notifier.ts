import {
  Operator,
  OperationOutcomeError,
  getExtension,
  parseSearchRequest,
  resourceMatchesSubscriptionCriteria,
} from '@medplum/core';
import type { FhirRepository } from '@medplum/fhir-router';
import type { Resource, Subscription } from '@medplum/fhirtypes';
import { restHookRequest } from './rest-hook-request';
import type { StoreChange } from './store-change';

type ActiveSubscription = Subscription & { id: string };

/** Medplum's per-Subscription override of how many times a notification is attempted. */
const MAX_ATTEMPTS_EXTENSION = 'https://medplum.com/fhir/StructureDefinition/subscription-max-attempts';
/** Medplum's cap on attempts (about 73 hours of exponential backoff from 1 s). */
const ATTEMPTS_CAP = 19;

export interface NotifierStats {
  /** Notifications a Subscription's endpoint accepted (2xx). */
  delivered: number;
  /** Attempts refused or unanswered (each retried until the Subscription's attempts run out). */
  failedAttempts: number;
  /** Notifications given up: attempts run out, or the queue full. */
  dropped: number;
  /** Notifications waiting, in flight or waiting to be retried. */
  pending: number;
  /** Active rest-hook Subscriptions. */
  subscriptions: number;
}

export interface SubscriptionNotifierOptions {
  /** Where the Subscriptions are read at start, and a retried notification's resource checked to be current. */
  repo: Pick<FhirRepository, 'searchResources' | 'readResource' | 'readHistory'>;
  /** Operator log lines: ids, types and statuses only, never a resource. */
  log: (level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => void;
  fetch?: typeof fetch;
  /** Attempts per notification unless the Subscription says (Medplum's default: 4). */
  maxAttempts?: number;
  /** The first retry's wait; each next one waits twice as long (Medplum: 1 s). */
  backoffMs?: number;
  /** Notifications kept at most; past it new ones are dropped (the service's polls and sweeps find what they told). */
  maxPending?: number;
  /** Notifications in flight at once. */
  concurrency?: number;
  /** How long an endpoint has to answer. */
  timeoutMs?: number;
}

interface Delivery {
  subscriptionId: string;
  change: StoreChange;
  versionId?: string;
  attempt: number;
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
  private readonly queue: Delivery[] = [];
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<AbortController>();
  private matching: Promise<void> = Promise.resolve();
  private waitingRetry = 0;
  private closed = false;
  private readonly counts = { delivered: 0, failedAttempts: 0, dropped: 0 };
  private readonly fetch: typeof fetch;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxPending: number;
  private readonly concurrency: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: SubscriptionNotifierOptions) {
    this.fetch = options.fetch ?? fetch;
    this.maxAttempts = options.maxAttempts ?? 4;
    this.backoffMs = options.backoffMs ?? 1000;
    this.maxPending = options.maxPending ?? 10_000;
    this.concurrency = options.concurrency ?? 8;
    this.timeoutMs = options.timeoutMs ?? 30_000;
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
    return {
      ...this.counts,
      pending: this.queue.length + this.inFlight.size + this.waitingRetry,
      subscriptions: this.byId.size,
    };
  }

  /** Stops: queued notifications and retries are dropped, those in flight aborted. */
  close(): void {
    this.closed = true;
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    for (const controller of this.inFlight) controller.abort();
    this.queue.length = 0;
    this.waitingRetry = 0;
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
            getPreviousResource: () => this.previousVersion(change),
          });
        } catch {
          // Criteria this server cannot evaluate match nothing (Medplum logs and goes on).
          matches = false;
        }
        if (matches)
          this.enqueue({ subscriptionId: subscription.id, change, versionId: parse().meta?.versionId, attempt: 1 });
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

  /** The version before an update (only a Subscription with FHIRPath criteria asks). */
  private async previousVersion(change: StoreChange): Promise<Resource | undefined> {
    if (change.interaction !== 'update') return undefined;
    const history = await this.options.repo.readHistory(change.resourceType, change.id).catch(() => undefined);
    return history?.entry?.[1]?.resource;
  }

  private enqueue(delivery: Delivery): void {
    if (this.stats().pending >= this.maxPending) {
      this.counts.dropped++;
      if (this.counts.dropped % 1000 === 1)
        this.options.log('warn', 'Subscription notifications dropped: the queue is full', {
          maxPending: this.maxPending,
          dropped: this.counts.dropped,
        });
      return;
    }
    this.queue.push(delivery);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.inFlight.size < this.concurrency && this.queue.length)
      void this.deliver(this.queue.shift()!);
  }

  private async deliver(delivery: Delivery): Promise<void> {
    // A Subscription deleted or turned off since is told nothing more (Medplum reads it again at delivery).
    const subscription = this.byId.get(delivery.subscriptionId);
    if (!subscription) return;
    const controller = new AbortController();
    this.inFlight.add(controller);
    let failure: string | undefined;
    try {
      if (delivery.attempt === 1 || (await this.stillCurrent(delivery)))
        failure = await this.post(subscription, delivery, controller);
    } catch (err) {
      failure = failureOf(err);
    } finally {
      this.inFlight.delete(controller);
    }
    if (failure !== undefined && !this.closed) this.retryOrDrop(subscription, delivery, failure);
    this.pump();
  }

  /** One attempt: undefined when the endpoint accepted it, else what went wrong (no body: it may hold patient data). */
  private async post(
    subscription: ActiveSubscription,
    delivery: Delivery,
    controller: AbortController,
  ): Promise<string | undefined> {
    const request = restHookRequest(subscription, delivery.change);
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      const response = await this.fetch(request.url, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: controller.signal,
      });
      await response.arrayBuffer().catch(() => undefined);
      if (!response.ok) return `status ${response.status}`;
      this.counts.delivered++;
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Medplum retries a notification only while its version is still the resource's current one. */
  private async stillCurrent(delivery: Delivery): Promise<boolean> {
    if (delivery.change.interaction === 'delete') return true;
    try {
      const current = await this.options.repo.readResource(delivery.change.resourceType, delivery.change.id);
      return current.meta?.versionId === delivery.versionId;
    } catch (err) {
      if (err instanceof OperationOutcomeError) return false;
      throw err;
    }
  }

  private retryOrDrop(subscription: ActiveSubscription, delivery: Delivery, failure: string): void {
    this.counts.failedAttempts++;
    const attempts = Math.min(
      ATTEMPTS_CAP,
      getExtension(subscription, MAX_ATTEMPTS_EXTENSION)?.valueInteger ?? this.maxAttempts,
    );
    const fields = {
      subscription: subscription.id,
      resourceType: delivery.change.resourceType,
      interaction: delivery.change.interaction,
      attempt: delivery.attempt,
      failure,
    };
    if (delivery.attempt >= attempts) {
      this.counts.dropped++;
      this.options.log('warn', 'Subscription notification given up after its last attempt', fields);
      return;
    }
    if (delivery.attempt === 1) this.options.log('info', 'Subscription notification failed; retrying', fields);
    this.waitingRetry++;
    const timer = setTimeout(
      () => {
        this.retryTimers.delete(timer);
        this.waitingRetry--;
        this.queue.push({ ...delivery, attempt: delivery.attempt + 1 });
        this.pump();
      },
      this.backoffMs * 2 ** (delivery.attempt - 1),
    );
    timer.unref();
    this.retryTimers.add(timer);
  }
}

/** What an unanswered attempt met: `TypeError (ECONNREFUSED)`, `AbortError` (timed out); never a body. */
function failureOf(err: unknown): string {
  const { name, cause } = (err ?? {}) as { name?: string; cause?: { code?: string } };
  return cause?.code ? `${name ?? 'error'} (${cause.code})` : (name ?? 'error');
}
