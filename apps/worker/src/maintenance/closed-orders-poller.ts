import { Injectable } from '@nestjs/common';
import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf } from '@kc/fhir';
import { CompletedTaskEventsProducer } from '@kc/queue';
import { sessionIdsOfOrder } from '@kc/task-states';
import { PollCursors } from './change-polls';
import { QueuingPoll } from './queuing-poll';

/**
 * Polling fallback for approved sessions' orders closed outside this service: the orders closed since the cursor,
 * with the Tasks naming them; those of a session (written here, or the EHR's a session was approved on) are each
 * queued for their job (ClosedOrderReviews.forOrder), which returns the session to a clinician if nothing replaced
 * the order. This service's own closings (a rejection, a dose change) are queued too and change nothing.
 */
@Injectable()
export class ClosedOrdersPoller extends QueuingPoll<MedicationRequest> {
  readonly name = 'closedOrders';
  protected readonly cursor = 'closed-orders';
  protected readonly queuedWhat = 'closed orders';
  /** The Tasks naming the orders the last search found (read with them): which orders are a session's. */
  private naming: Task[] = [];

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    pollCursors: PollCursors,
  ) {
    super(pollCursors);
  }

  protected async changedSince(from: string): Promise<MedicationRequest[]> {
    // Every closed order is read (a shared server's other applications' too): an order of the EHR's can be a session's
    // only through the Tasks naming it, included with it.
    const orders: MedicationRequest[] = [];
    this.naming = [];
    const pages = this.fhir.searchPages<MedicationRequest>('MedicationRequest', {
      status: 'cancelled,stopped,entered-in-error',
      _lastUpdated: `ge${from}`,
      _sort: '_lastUpdated',
      _count: 100,
      _revinclude: 'Task:based-on',
    });
    for await (const page of pages) {
      orders.push(...matchesOf<MedicationRequest>(page));
      this.naming.push(...includedOf<Task>(page, 'Task'));
    }
    return orders;
  }

  protected enqueue(id: string): Promise<unknown> {
    return this.producer.enqueueOrderChange(id);
  }

  protected override keep(order: MedicationRequest): boolean {
    return sessionIdsOfOrder(order, this.naming).length > 0;
  }
}
