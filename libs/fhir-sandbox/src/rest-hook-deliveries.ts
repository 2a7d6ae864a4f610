import { OperationOutcomeError, getExtension } from '@medplum/core';
import type { FhirRepository } from '@medplum/fhir-router';
import type { Subscription } from '@medplum/fhirtypes';
import { restHookRequest } from './rest-hook-request';
import type { StoreChange } from './store-change';

export type ActiveSubscription = Subscription & { id: string };

/** Medplum's per-Subscription override of how many times a notification is attempted. */
const MAX_ATTEMPTS_EXTENSION = 'https://medplum.com/fhir/StructureDefinition/subscription-max-attempts';
/** Medplum's cap on attempts (about 73 hours of exponential backoff from 1 s). */
const ATTEMPTS_CAP = 19;

/** One notification: a change for a Subscription, and which attempt this is. */
export interface Delivery {
  subscriptionId: string;
  change: StoreChange;
  versionId?: string;
  attempt: number;
}

export interface DeliveryStats {
  /** Notifications a Subscription's endpoint accepted (2xx). */
  delivered: number;
  /** Attempts refused or unanswered (each retried until the Subscription's attempts run out). */
  failedAttempts: number;
  /** Notifications given up: attempts run out, or the queue full. */
  dropped: number;
  /** Notifications waiting, in flight or waiting to be retried. */
  pending: number;
}

export interface RestHookDeliveryOptions {
  /** A retried notification's resource is checked to be still current here. */
  repo: Pick<FhirRepository, 'readResource'>;
  /** The Subscription as it is now (undefined: deleted or turned off since: nothing more is sent to it). */
  subscription: (id: string) => ActiveSubscription | undefined;
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
  /**
   * Told when a notification is done with for good: sent, given up, dropped, its Subscription gone, or its resource
   * changed since (not retried). Not when the deliveries close first: it is still to be sent.
   */
  settled?: (delivery: Delivery) => void;
}

/**
 * The POSTs of rest-hook notifications (rest-hook-request.ts), as Medplum's subscription worker sends them: at least
 * once, unordered, a few in flight, a refused or unanswered one retried with exponential backoff while its version
 * is still the resource's current one, given up after the Subscription's attempts. In memory; the store's outbox
 * (SubscriptionNotifier) keeps what is not settled across a stop.
 */
export class RestHookDeliveries {
  private readonly queue: Delivery[] = [];
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<AbortController>();
  private waitingRetry = 0;
  private closed = false;
  private readonly counts = { delivered: 0, failedAttempts: 0, dropped: 0 };
  private readonly fetch: typeof fetch;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxPending: number;
  private readonly concurrency: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: RestHookDeliveryOptions) {
    this.fetch = options.fetch ?? fetch;
    this.maxAttempts = options.maxAttempts ?? 4;
    this.backoffMs = options.backoffMs ?? 1000;
    this.maxPending = options.maxPending ?? 10_000;
    this.concurrency = options.concurrency ?? 8;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  stats(): DeliveryStats {
    return { ...this.counts, pending: this.queue.length + this.inFlight.size + this.waitingRetry };
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

  add(delivery: Delivery): void {
    if (this.closed) return;
    if (this.stats().pending >= this.maxPending) {
      this.counts.dropped++;
      this.options.settled?.(delivery);
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
    const subscription = this.options.subscription(delivery.subscriptionId);
    if (!subscription) return this.options.settled?.(delivery);
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
    if (failure === undefined) this.options.settled?.(delivery);
    else if (!this.closed) this.retryOrDrop(subscription, delivery, failure);
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
      this.options.settled?.(delivery);
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
