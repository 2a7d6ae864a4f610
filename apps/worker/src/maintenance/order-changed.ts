import { Injectable } from '@nestjs/common';
import type { MedicationAdministration, MedicationRequest, Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { CrossedClosings } from '../followups/crossed-closings.service';
import { ClosedOrderReviews } from './closed-order-reviews';

/**
 * An order closed (notified, or found by the poll), searched once for what depends on it (the pump's records of it and
 * the Tasks naming it): first a closing by this service that crossed the pump is undone (CrossedClosings); else the
 * sessions it leaves with nothing to give are returned for review (ClosedOrderReviews). Undone, the order is open
 * again and returns nothing.
 */
@Injectable()
export class OrderChanged {
  constructor(
    private readonly fhir: FhirClient,
    private readonly crossedClosings: CrossedClosings,
    private readonly reviews: ClosedOrderReviews,
  ) {}

  async heard(orderId: string, now = new Date()): Promise<{ undone: number; returned: number }> {
    const found = await this.fhir.search<MedicationRequest | MedicationAdministration | Task>('MedicationRequest', {
      _id: orderId,
      _revinclude: ['MedicationAdministration:request', 'Task:based-on'],
    });
    const { undone } = await this.crossedClosings.ofOrderFound(found, now);
    if (undone) return { undone, returned: 0 };
    return { undone, ...(await this.reviews.forOrderFound(orderId, found, now)) };
  }
}
