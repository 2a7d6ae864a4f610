import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { MedicationRequest } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { CompletedTaskEventsProducer, QUEUES } from '@kc/queue';
import { ORDER_KEY_SYSTEM } from '@kc/task-states';
import { initCursor, pollCursor, queueChangedSince, type StoredCursor } from './cursor-poll';

/**
 * Polling fallback for orders this service wrote that were closed outside it (a server that cannot notify, such as the
 * embedded one, or a notification lost): those changed since the cursor, on the Procedure poll's schedule, each queued
 * for its job (ClosedOrderReviews.forOrder), which returns the session to a clinician if nothing replaced the order.
 * This service's own closings (a rejection, a dose change) are queued too and change nothing.
 */
@Injectable()
export class ClosedOrdersPoller {
  private readonly logger = new Logger(ClosedOrdersPoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private cursor(): Promise<StoredCursor> {
    return pollCursor(this.queue, this.config, 'closed-orders');
  }

  async initCursor(): Promise<void> {
    await initCursor(await this.cursor());
  }

  async poll(): Promise<{ closedOrders: number }> {
    const queued = await queueChangedSince(
      await this.cursor(),
      (from) =>
        this.fhir.searchAll<MedicationRequest>('MedicationRequest', {
          // Only this service's orders (their key's system): a shared FHIR server holds every other application's.
          identifier: `${ORDER_KEY_SYSTEM}|`,
          status: 'cancelled,stopped,entered-in-error',
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      (id) => this.producer.enqueueOrderChange(id),
    );
    if (queued) this.logger.log({ msg: 'poll queued closed orders', count: queued });
    return { closedOrders: queued };
  }
}
