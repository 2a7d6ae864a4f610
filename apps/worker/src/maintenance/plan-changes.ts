import { Injectable, Logger } from '@nestjs/common';
import type { CarePlan, DetectedIssue } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { plansClearedBy, plansImplicatedBy } from '@kc/protocols';
import { ClinicAlerts } from '../alerts/clinic-alerts.service';
import { ContraindicationSweep } from './contraindication-sweep';
import { OpenTasksReader, type OpenTasks } from './open-tasks';
import { PausedPlanHolds } from './paused-plan-holds';
import { PlansAtTheirEnd } from './plans-at-their-end';
import { PlansExtended } from './plans-extended';
import { StoppedPlanSweep } from './stopped-plan-sweep';

/**
 * What one plan's change calls for, at once rather than at the next sweep: the plan notified (stopped: its open Tasks
 * withdrawn; paused: its approved orders held; resumed: released once clear), or a contraindication on it resolved,
 * here or in the EHR (the holds it placed lifted, those of a contraindication and those of a pause it kept, and the
 * clinic told if it was alerted to it).
 */
@Injectable()
export class PlanChanges {
  private readonly logger = new Logger(PlanChanges.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly openTasks: OpenTasksReader,
    private readonly stoppedPlans: StoppedPlanSweep,
    private readonly pausedPlans: PausedPlanHolds,
    private readonly contraindications: ContraindicationSweep,
    private readonly alerts: ClinicAlerts,
    private readonly plansAtTheirEnd: PlansAtTheirEnd,
    private readonly plansExtended: PlansExtended,
  ) {}

  /**
   * A plan an EHR changed (notified): stopped, its open Tasks withdrawn; paused, its orders held; resumed, its
   * contraindications checked (none were while it was paused), then its orders released if it is clear; its end
   * passed with nothing open, completed, or its end moved after this service completed it, active again (one read, for
   * a plan with no open Task); with no infusion session open, its sessions kept out by an end since moved proposed
   * (PlansExtended: one batch more, only then). `deceased`: told by the death of its patient (their records), so its
   * post-infusion checks are withdrawn too (a stopped plan's outlive it, not the patient).
   */
  async planChanged(carePlanId: string, now = new Date(), deceased?: ReadonlySet<string>) {
    const open = await this.withDeletedPlan(
      await this.openTasks.read({ 'based-on': `CarePlan/${carePlanId}` }),
      carePlanId,
    );
    // Told of this plan: a write that lost a race to a change made meanwhile fails the job, which runs again in seconds.
    const { withdrawn, answered } = await this.stoppedPlans.sweep(now, open, 'fail', deceased);
    const pausedHeld = await this.pausedPlans.hold(open, now, 'fail');
    // A plan with open Tasks came with them (their include): not read again.
    const { completed, reopened } = await this.plansAtTheirEnd.judge(
      carePlanId,
      now,
      open.carePlans.get(`CarePlan/${carePlanId}`),
    );
    // Its course extended in the EHR (or made active again just above): the sessions its old end kept out proposed.
    const { proposedAgain } = await this.plansExtended.heard(carePlanId, open, now);
    // Orders held for a pause: only approved Tasks' orders are, so a plan with none (most notifications) reads nothing more.
    const held = open.approved.length ? await this.pausedPlans.heldOrders(carePlanId) : [];
    // Tasks held for a contraindication: released by the recheck once none on the plan is unresolved.
    if (!held.length && !open.held.length)
      return { withdrawn, answered, pausedHeld, completed, reopened, proposedAgain };
    const { recorded, released } = await this.contraindications.recheckFor(`CarePlan/${carePlanId}`, now);
    const pausedReleased = held.length ? await this.pausedPlans.release(held, now, 'fail') : 0;
    return {
      withdrawn,
      answered,
      pausedHeld,
      completed,
      reopened,
      proposedAgain,
      contraindications: recorded,
      holdsReleased: released,
      pausedReleased,
    };
  }

  /**
   * Open Tasks of a plan deleted on the FHIR server (notified by id) are judged as a revoked plan's: withdrawn, their
   * orders cancelled and reminders revoked. The plan's last version (its history) stands for it; a plan that is only
   * missing from the read's includes, or never was, is left as read.
   */
  private async withDeletedPlan(open: OpenTasks, carePlanId: string): Promise<OpenTasks> {
    const reference = `CarePlan/${carePlanId}`;
    const tasks = open.awaiting.length + open.approved.length + open.held.length;
    if (!tasks || open.carePlans.has(reference)) return open;
    const found = await this.fhir.readEvenIfDeleted<CarePlan>('CarePlan', carePlanId);
    if (!found?.deleted) return open;
    this.logger.log({
      msg: 'plan deleted on the FHIR server: its open Tasks withdrawn as a revoked plan’s',
      carePlanId,
    });
    return { ...open, carePlans: new Map([...open.carePlans, [reference, { ...found.resource, status: 'revoked' }]]) };
  }

  /**
   * A contraindication resolved (overridden here or in the EHR, or withdrawn): each plan it held looked at, and the
   * clinic told it is dealt with if it was alerted to it.
   */
  async issueChanged(issueId: string, now = new Date()) {
    const found = await this.fhir.readEvenIfDeleted<DetectedIssue>('DetectedIssue', issueId);
    if (!found) return { plans: 0, holdsReleased: 0, pausedReleased: 0 };
    if (found.deleted) return this.issueDeleted(found.resource, now);
    const issue = found.resource;
    const plans = plansClearedBy(issue);
    let holdsReleased = 0;
    let pausedReleased = 0;
    for (const plan of plans) {
      const outcome = await this.planChanged(plan.split('/')[1], now);
      holdsReleased += outcome.holdsReleased ?? 0;
      pausedReleased += outcome.pausedReleased ?? 0;
    }
    if (holdsReleased || pausedReleased)
      this.logger.log({ msg: 'released holds after a contraindication resolved', holdsReleased, pausedReleased });
    // Whoever was alerted to it is told it is dealt with (once; nothing when no alert went).
    if (plans.length) await this.alerts.tell([issue], now);
    return { plans: plans.length, holdsReleased, pausedReleased };
  }

  /**
   * A contraindication deleted on the FHIR server (an EHR withdrawing it that way): the plans its last version
   * implicated are checked again now. Their holds are lifted where the patient's data no longer contraindicates
   * anything; where it still does, the check records the contraindication again and the orders stay held.
   */
  private async issueDeleted(last: DetectedIssue, now: Date) {
    const plans = plansImplicatedBy(last);
    let recorded = 0;
    let holdsReleased = 0;
    for (const plan of plans) {
      const outcome = await this.contraindications.recheckFor(plan, now);
      recorded += outcome.recorded;
      holdsReleased += outcome.released;
    }
    if (plans.length) this.logger.log({ msg: 'plans of a deleted contraindication checked', recorded, holdsReleased });
    return { plans: plans.length, contraindications: recorded, holdsReleased, pausedReleased: 0 };
  }
}
