import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, includedOf, matchesOf } from '@kc/fhir';
import { CompletedTaskEventsProducer, QUEUES } from '@kc/queue';
import { sessionIdsOfOrder } from '@kc/task-states';
import { initCursor, pollCursor, queueChangedSince, type StoredCursor } from './cursor-poll';

/**
 * Polling fallback for approved sessions' orders closed outside this service (a server that cannot notify, such as
 * the embedded one, or a notification lost): the orders closed since the cursor, on the Procedure poll's schedule,
 * with the Tasks naming them; those of a session (written here, or the EHR's a session was approved on) are each
 * queued for their job (ClosedOrderReviews.forOrder), which returns the session to a clinician if nothing replaced
 * the order. This service's own closings (a rejection, a dose change) are queued too and change nothing.
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
    // Every closed order is read (a shared server's other applications' too): an order of the EHR's can be a session's
    // only through the Tasks naming it, included with it.
    const naming: Task[] = [];
    const queued = await queueChangedSince(
      await this.cursor(),
      async (from) => {
        const orders: MedicationRequest[] = [];
        const pages = this.fhir.searchPages<MedicationRequest>('MedicationRequest', {
          status: 'cancelled,stopped,entered-in-error',
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
          _revinclude: 'Task:based-on',
        });
        for await (const page of pages) {
          orders.push(...matchesOf<MedicationRequest>(page));
          naming.push(...includedOf<Task>(page, 'Task'));
        }
        return orders;
      },
      (id) => this.producer.enqueueOrderChange(id),
      (order) => sessionIdsOfOrder(order, naming).length > 0,
    );
    if (queued) this.logger.log({ msg: 'poll queued closed orders', count: queued });
    return { closedOrders: queued };
  }
}
