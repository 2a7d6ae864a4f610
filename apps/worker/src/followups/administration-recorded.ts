import { Injectable } from '@nestjs/common';
import type { Bundle, CarePlan, MedicationAdministration, MedicationRequest } from '@medplum/fhirtypes';
import { FhirClient, matchesOf } from '@kc/fhir';
import { carePlanHoldsCare, carePlanReferenceOf } from '@kc/followups';
import { StoppedPlanEventsProducer } from '@kc/queue';
import { sessionBegunBy } from '@kc/task-states';
import { RateNoticeAlerts } from '../alerts/rate-notice-alerts';
import { CrossedClosings } from './crossed-closings.service';
import { LateAdministrations } from './late-administrations.service';

/**
 * An administration recorded at the pump (notified, or found by the poll), read once for what depends on it. When it
 * begins a session under an order, that order is searched once, with the pump's records of it: a closing of it by this
 * service that crossed the pump is undone (CrossedClosings), and the clinic, told of its rate notice, is told it is
 * dealt with (RateNoticeAlerts; since session 41, before only by the sweep); and, given under a plan stopped since, the
 * plan's withdrawal is queued, which answers the session when its infusion was followed up before this record was
 * charted (sessionsGivenOnStoppedPlans; since session 41, before left open). Then the sessions proposed from its
 * infusion are proposed again at the rate it records, or their orders noted when approved (LateAdministrations).
 */
@Injectable()
export class AdministrationRecorded {
  constructor(
    private readonly fhir: FhirClient,
    private readonly crossedClosings: CrossedClosings,
    private readonly lateAdministrations: LateAdministrations,
    private readonly rateAlerts: RateNoticeAlerts,
    private readonly stoppedPlans: StoppedPlanEventsProducer,
  ) {}

  async heard(
    administrationId: string,
    now = new Date(),
  ): Promise<{ undone: number; reproposed: number; noted: number }> {
    const administration = await this.fhir.readIfExists<MedicationAdministration>(
      'MedicationAdministration',
      administrationId,
    );
    const order = await this.orderBegun(administration);
    const crossed = order ? await this.crossedClosings.ofOrderFound(order, now) : { undone: 0 };
    if (order) await this.rateAlerts.heardOfOrder(order, now);
    if (administration?.status === 'completed' && order) await this.lookAtPlanIfStopped(order);
    return { ...crossed, ...(await this.lateAdministrations.forAdministration(administration, now)) };
  }

  /** The order whose session the administration begins, with the pump's records of it (one search); else undefined. */
  private async orderBegun(administration: MedicationAdministration | undefined): Promise<Bundle | undefined> {
    const orderId = /^MedicationRequest\/([^/]+)$/.exec(administration?.request?.reference ?? '')?.[1];
    if (!administration || !orderId || !sessionBegunBy([administration])) return undefined;
    return this.fhir.search<MedicationRequest | MedicationAdministration>('MedicationRequest', {
      _id: orderId,
      _revinclude: 'MedicationAdministration:request',
    });
  }

  /**
   * The plan of the order given (one read; R4 has no search parameter to include it with the order), its withdrawal
   * queued when that plan is over (stopped, completed, in error).
   */
  private async lookAtPlanIfStopped(found: Bundle): Promise<void> {
    const [order] = matchesOf<MedicationRequest>(found);
    const planId = /^CarePlan\/([^/]+)$/.exec((order && carePlanReferenceOf(order)) ?? '')?.[1];
    const plan = planId ? await this.fhir.readIfExists<CarePlan>('CarePlan', planId) : undefined;
    const holds = plan && carePlanHoldsCare(plan);
    if (planId && holds && !holds.ok && holds.closed) await this.stoppedPlans.enqueue(planId);
  }
}
