import { Injectable } from '@nestjs/common';
import type { MedicationAdministration, MedicationRequest, Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { RateNoticeAlerts } from '../alerts/rate-notice-alerts';
import { CrossedClosings } from '../followups/crossed-closings.service';
import { ClosedOrderReviews } from './closed-order-reviews';

/**
 * An order closed (notified, or found by the poll), searched once for what depends on it (the pump's records of it and
 * the Tasks naming it): first a closing by this service that crossed the pump is undone (CrossedClosings); else the
 * sessions it leaves with nothing to give are returned for review (ClosedOrderReviews). Undone, the order is open
 * again and returns nothing. Either way, the clinic, told of the order's rate notice, is told it is dealt with
 * (RateNoticeAlerts; since session 41, before only by the sweep): a dose changed here closes the order it replaces.
 */
@Injectable()
export class OrderChanged {
  constructor(
    private readonly fhir: FhirClient,
    private readonly crossedClosings: CrossedClosings,
    private readonly reviews: ClosedOrderReviews,
    private readonly rateAlerts: RateNoticeAlerts,
  ) {}

  async heard(orderId: string, now = new Date()): Promise<{ undone: number; returned: number }> {
    const found = await this.fhir.search<MedicationRequest | MedicationAdministration | Task>('MedicationRequest', {
      _id: orderId,
      _revinclude: ['MedicationAdministration:request', 'Task:based-on'],
    });
    const { undone } = await this.crossedClosings.ofOrderFound(found, now);
    const { returned } = undone ? { returned: 0 } : await this.reviews.forOrderFound(orderId, found, now);
    await this.rateAlerts.heardOfOrder(found, now);
    return { undone, returned };
  }
}
