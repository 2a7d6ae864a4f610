import { Injectable, Logger } from '@nestjs/common';
import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf } from '@kc/fhir';
import { CompletedTaskEventsProducer } from '@kc/queue';
import { sessionIdsOfOrder } from '@kc/task-states';
import { PollCursors, type ChangePoll } from './change-polls';
import { queueChangedSince } from './cursor-poll';

/** Its cursor's key in Redis. */
const CURSOR = 'closed-orders';

/**
 * Polling fallback for approved sessions' orders closed outside this service: the orders closed since the cursor,
 * with the Tasks naming them; those of a session (written here, or the EHR's a session was approved on) are each
 * queued for their job (ClosedOrderReviews.forOrder), which returns the session to a clinician if nothing replaced
 * the order. This service's own closings (a rejection, a dose change) are queued too and change nothing.
 */
@Injectable()
export class ClosedOrdersPoller implements ChangePoll {
  readonly name = 'closedOrders';
  readonly cursors = [CURSOR];
  private readonly logger = new Logger(ClosedOrdersPoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    private readonly pollCursors: PollCursors,
  ) {}

  async poll(): Promise<{ queued: number }> {
    // Every closed order is read (a shared server's other applications' too): an order of the EHR's can be a session's
    // only through the Tasks naming it, included with it.
    const naming: Task[] = [];
    const queued = await queueChangedSince(
      await this.pollCursors.of(CURSOR),
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
    return { queued };
  }
}
