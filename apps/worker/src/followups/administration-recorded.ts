import { Injectable } from '@nestjs/common';
import type {
  Bundle,
  CarePlan,
  MedicationAdministration,
  MedicationRequest,
  Procedure,
  Task,
} from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf } from '@kc/fhir';
import {
  administrationWindow,
  carePlanHoldsCare,
  carePlanReferenceOf,
  carePlanReferencesOf,
  infusionThatGave,
  isTaskClosedInEhr,
  isUnlinkedInfusion,
} from '@kc/followups';
import {
  CompletedTaskEventsProducer,
  InfusionEventsProducer,
  PatientRecordEventsProducer,
  StoppedPlanEventsProducer,
} from '@kc/queue';
import { isOpenOrder, orderTaskIdOf, sessionBegunBy, sessionIdsOfOrder } from '@kc/task-states';
import { sessionsOfOrderInEhr } from '@kc/nest-core';
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
    private readonly infusions: InfusionEventsProducer,
    private readonly records: PatientRecordEventsProducer,
    private readonly tasks: CompletedTaskEventsProducer,
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
    let again: { procedureId: string; running: boolean } | undefined;
    if (administration?.status === 'completed' && order) {
      await this.lookAtPlanIfStopped(order);
      await this.closeIfTaskClosedInEhr(order);
      again = await this.followUpAgainIfLeftOpen(administration, order);
    }
    const late = await this.lateAdministrations.forAdministration(administration, now);
    if (again?.running) throw new FollowUpRunningError(again.procedureId, 'pump record');
    return { ...crossed, ...late };
  }

  /** The order whose session the administration begins, with the pump's records of it (one search); else undefined. */
  private async orderBegun(administration: MedicationAdministration | undefined): Promise<Bundle | undefined> {
    const orderId = /^MedicationRequest\/([^/]+)$/.exec(administration?.request?.reference ?? '')?.[1];
    if (!administration || !orderId || !sessionBegunBy([administration])) return undefined;
    return this.fhir.search<MedicationRequest | MedicationAdministration>('MedicationRequest', {
      _id: orderId,
      // The Tasks approved on it too (an EHR's order): CrossedClosings finds its session through them.
      _revinclude: ['MedicationAdministration:request', 'Task:based-on'],
    });
  }

  /**
   * A session given (this completed record) whose order is still open, during an infusion already on record: that
   * infusion's follow-up ran before the record was charted and left the session open (it answers a session by the
   * pump's record when the infusion that planned it is gone, in error since, or the pump's clock put it elsewhere), so
   * its order stayed active after the drug went in (clinic day, seeds 1656, 1702). The infusion is followed up again
   * (InfusionEventsProducer.followUpAgain), which judges the record as if it had been there. One search of the
   * patient's infusions around the record, only for a completed record of an open order written here, replacing one, or
   * one a session was approved on (since session 42).
   * When that follow-up is running at the moment (it may have read before the record), this job fails after its other
   * work and runs again after its backoff, by when it has finished (since session 42; before, the ask was dropped and
   * the session waited for another record or a clinician).
   */
  private async followUpAgainIfLeftOpen(
    administration: MedicationAdministration,
    found: Bundle,
  ): Promise<{ procedureId: string; running: boolean } | undefined> {
    const [order] = matchesOf<MedicationRequest>(found);
    const window = administrationWindow(
      administration.effectivePeriod ?? {
        start: administration.effectiveDateTime,
        end: administration.effectiveDateTime,
      },
    );
    // A session's order: written here, replacing one, or one a session was approved on (the Tasks the search included).
    const session =
      order &&
      (orderTaskIdOf(order) || order.priorPrescription || sessionIdsOfOrder(order, includedOf<Task>(found, 'Task'))[0]);
    if (!order || !session || !window || !order.subject?.reference) return undefined;
    const open = isOpenOrder(order);
    const infusions = await this.fhir.searchAll<Procedure>('Procedure', {
      subject: order.subject.reference,
      status: 'completed,entered-in-error',
      date: [`ge${window.from}`, `le${window.to}`],
      _count: 50,
    });
    const infusion = infusionThatGave(administration, infusions);
    // Given during an infusion recorded in error since, whose job ran before this record was charted (and so found
    // nothing the pump gave): that job again, which answers the session by this record (clinic day seed 2471: before,
    // the session stayed open with its order active under a plan paused meanwhile).
    const takenBack = open && !infusion && infusionThatGave(administration, infusions, 'entered-in-error');
    if (takenBack && takenBack.id) {
      await this.records.enqueue(`Procedure/${takenBack.id}`);
      return undefined;
    }
    if (!infusion?.id) return undefined;
    // One naming no plan too: this record may be what ties it to its plan (since session 43). Its order closed since
    // (cancelled with a plan stopped before this record was charted: clinic day seed 2935), only one not naming the
    // order's plan, which this record may tie to it (since session 48; before, it was left unlinked).
    const namesOrdersPlan = carePlanReferencesOf(infusion).includes(carePlanReferenceOf(order) ?? '');
    if (open ? !carePlanReferenceOf(infusion) && !isUnlinkedInfusion(infusion) : namesOrdersPlan) return undefined;
    const { running } = await this.infusions.followUpAgain(infusion.id);
    return { procedureId: infusion.id, running };
  }

  /**
   * The session of an open order given (this completed record) whose Task the EHR closed by its status alone while
   * the pump was running it: that Task's job queued again, which completes the order as given now (its first run left
   * it to the pump). Before session 49 the order stayed active after the drug went in until the 15-minute
   * reconciliation. One read (the Task of an order written here; an EHR's order's are included), only for an open
   * order; for the EHR's replacement of a session's order, the orders it replaces first (ordersReplacedBy).
   */
  private async closeIfTaskClosedInEhr(found: Bundle): Promise<void> {
    const [order] = matchesOf<MedicationRequest>(found);
    if (!order || !isOpenOrder(order)) return;
    // The EHR's replacement of a session's order (a dose changed there): the session of the orders it replaces.
    const { session, tasks: approvedOn } = await sessionsOfOrderInEhr(
      this.fhir,
      order,
      includedOf<Task>(found, 'Task'),
    );
    const ids = session?.ids ?? [];
    // The Task whose approval wrote an order is not among those approved on it: read.
    const tasks = await Promise.all(
      ids.map(async (id) => approvedOn.find((t) => t.id === id) ?? (await this.fhir.readIfExists<Task>('Task', id))),
    );
    for (const task of tasks.filter((t): t is Task => t !== undefined).filter(isTaskClosedInEhr))
      await this.tasks.enqueueTaskChangedInEhr(task.id!, task.meta?.versionId);
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

/**
 * An infusion's follow-up was running when something it may have read before was heard (a pump record charted, the
 * infusion re-timed): the job that heard it is retried (its backoff), once that run has finished. Ids only in the
 * message (it is logged).
 */
export class FollowUpRunningError extends Error {
  constructor(procedureId: string, heard: string) {
    super(`the follow-up of Procedure/${procedureId} is running: the ${heard} is heard again once it has finished`);
  }
}
