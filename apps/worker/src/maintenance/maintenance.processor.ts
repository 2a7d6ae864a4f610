import { Inject, Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import {
  DeadLetters,
  JOBS,
  type AppointmentBookedJob,
  type SessionApprovedJob,
  type CheckAnsweredElsewhereJob,
  type CheckDoneElsewhereJob,
  type OrderChangedJob,
  type AdministrationRecordedJob,
  type RecheckContraindicationsJob,
  type WithdrawStoppedPlanJob,
  type TaskDeletedJob,
  type TaskChangedInEhrJob,
} from '@kc/queue';
import { MeteredWorkerHost } from '../metered-worker-host';
import { QueueJobMetrics } from '../queue-job-metrics';
import { AnsweredOrdersSweep } from './answered-orders-sweep';
import { ClosedOrderReviews } from './closed-order-reviews';
import { AdministrationRecorded } from '../followups/administration-recorded';
import { OrderChanged } from './order-changed';
import { ContraindicationSweep } from './contraindication-sweep';
import { OverdueSweep } from './overdue-sweep';
import { StoppedPlanSweep } from './stopped-plan-sweep';
import { PlansAtTheirEnd } from './plans-at-their-end';
import { PlansExtended } from './plans-extended';
import { PausedPlanHolds } from './paused-plan-holds';
import { PlanChanges } from './plan-changes';
import { ProtocolChanges } from './protocol-changes';
import { InfusionsInError } from './infusions-in-error';
import { RetimedInfusions } from '../followups/retimed-infusions';
import { DeceasedPatients } from './deceased-patients';
import { DeathsTakenBack } from './deaths-taken-back';
import { UnlinkedInfusionIssues } from './unlinked-infusion-issues';
import { DeletedTasks } from './deleted-tasks';
import { TasksChangedInEhr } from './tasks-changed-in-ehr';
import { CHANGE_POLLS, type ChangePoll } from './change-polls';
import { nothingOpen, OpenTasksReader } from './open-tasks';
import { ProcedurePoller } from './procedure-poller';
import { ReminderSweep } from '../reminders/reminder-sweep';
import { ScorePoller } from '../outcomes/score-poller';
import { ChecksAnsweredElsewhere } from '../checks/checks-answered-elsewhere.service';
import { ChecksDoneElsewhere } from '../checks/checks-done-elsewhere.service';
import { AppointmentBookings } from '../bookings/appointment-bookings.service';
import { InfusionsUnderClosedPlans } from '../alerts/infusions-under-closed-plans';
import { FailingWorkAlerts } from '../alerts/failing-work-alerts';

/** Housekeeping jobs on the maintenance queue (scheduled by MaintenanceSchedules). */
@Injectable()
export class MaintenanceProcessor extends MeteredWorkerHost {
  constructor(
    private readonly poller: ProcedurePoller,
    private readonly sweep: OverdueSweep,
    private readonly stoppedPlans: StoppedPlanSweep,
    private readonly pausedPlans: PausedPlanHolds,
    private readonly contraindications: ContraindicationSweep,
    private readonly openTasks: OpenTasksReader,
    private readonly answeredOrders: AnsweredOrdersSweep,
    private readonly closedOrders: ClosedOrderReviews,
    private readonly administrations: AdministrationRecorded,
    private readonly ordersChanged: OrderChanged,
    private readonly reminders: ReminderSweep,
    private readonly scores: ScorePoller,
    private readonly checksDoneElsewhere: ChecksDoneElsewhere,
    private readonly checksAnsweredElsewhere: ChecksAnsweredElsewhere,
    private readonly bookings: AppointmentBookings,
    private readonly planChanges: PlanChanges,
    private readonly protocolChanges: ProtocolChanges,
    private readonly infusionsInError: InfusionsInError,
    private readonly retimedInfusions: RetimedInfusions,
    private readonly deceasedPatients: DeceasedPatients,
    private readonly deathsTakenBack: DeathsTakenBack,
    private readonly closedPlanAlerts: InfusionsUnderClosedPlans,
    private readonly failingWork: FailingWorkAlerts,
    private readonly plansAtTheirEnd: PlansAtTheirEnd,
    private readonly plansExtended: PlansExtended,
    private readonly unlinkedInfusions: UnlinkedInfusionIssues,
    private readonly deletedTasks: DeletedTasks,
    private readonly tasksChangedInEhr: TasksChangedInEhr,
    @Inject(CHANGE_POLLS) private readonly polls: ChangePoll[],
    private readonly deadLetters: DeadLetters,
    queueMetrics: QueueJobMetrics,
  ) {
    super(queueMetrics);
  }

  async process(job: Job): Promise<unknown> {
    switch (job.name) {
      case JOBS.pollProcedures: {
        // One "poll for changes" job: every ChangePoll in turn (completed infusions first), each under its name.
        const polled: Record<string, unknown> = {};
        for (const poll of this.polls) polled[poll.name] = await poll.poll();
        return polled;
      }
      case JOBS.overdueSweep: {
        // One sweep of the open Tasks: overdue ones marked, those of stopped plans withdrawn, and the contraindications
        // found since the waiting ones were proposed recorded on their plans (holding the orders approved before).
        // The last two judge one read of the open Tasks (a stopped plan's are skipped by the second).
        // Then the orders still open whose Task is closed are closed.
        // Its steps on the dashboard (a clinic's thousands of open plans take a while; once per run, so always).
        const step = (percent: number) => job.updateProgress(percent);
        const overdue = await this.sweep.sweep();
        // Infusions charted naming no plan, linked or taken back in the EHR since: their issues resolved before the
        // open Tasks are read, so the contraindication step below releases what they held.
        const notLinkedPlansReleased = (await this.unlinkedInfusions.lookAgain()).length;
        await step(10);
        const open = await this.openTasks.all();
        await step(30);
        const { withdrawn, answered: givenOnStoppedPlans } = await this.stoppedPlans.sweep(new Date(), open);
        // Plans ended for a death the EHR has since taken back: the clinic told (a correction is not notified).
        const { deathsTakenBack } = await this.deathsTakenBack.lookAgain();
        // Infusions charted under a plan in error whose alert their jobs could not send (a mail server down).
        const closedPlanAlertsTold = await this.closedPlanAlerts.lookAgain();
        // Work whose jobs keep failing (dead letters) with nothing else to show it: an infusion's check not planned, a
        // patient's answers not recorded. The clinic told, and told again once it has run.
        const failingWork = await this.failingWork.look();
        // Sessions the pump gave during an infusion in error, charted after its job ran: answered before the holds.
        const givenDuringInfusionsInError = await this.infusionsInError.lookAgain();
        // Paused plans' approved orders held; those of plans resumed released once clear, so after the plans'
        // contraindications are checked (a pregnancy recorded during the pause keeps them held).
        const pausedHeld = await this.pausedPlans.hold(open);
        await step(40);
        const { recorded, held, released } = await this.contraindications.sweep(new Date(), open);
        await step(80);
        const pausedReleased = await this.pausedPlans.release(await this.pausedPlans.heldOrders());
        // Approved sessions whose order the EHR closed, nothing replacing it: back to a clinician.
        const { returned } = await this.closedOrders.sweep(open);
        await step(90);
        // And those of Tasks deleted on the FHIR server, whose notification was missed, withdrawn.
        const { closed, withdrawn: deletedTasksWithdrawn } = await this.answeredOrders.sweep();
        // Plans whose end passed with nothing open completed (last: the steps above withdraw what began after it and
        // close the orders of closed Tasks), and those whose end the EHR moved since reopened: time passing is
        // notified by nobody.
        const plansAtTheirEnd = await this.plansAtTheirEnd.sweep();
        // Those reopened: what their old end kept out proposed, here for a server that does not notify the plan's
        // change (one that does has it heard at once, and this finds the proposals written).
        let proposedAgainForNewEnd = 0;
        for (const id of plansAtTheirEnd.reopened)
          proposedAgainForNewEnd += (await this.plansExtended.heard(id, nothingOpen(), new Date(), 'skip'))
            .proposedAgain;
        // And active plans changed since the last sweep, for one the EHR extended with nothing notified (the open
        // Tasks as read above: a plan with an infusion session open reads nothing more).
        const changedPlans = await this.plansExtended.lookAgain(open, new Date(), plansAtTheirEnd.reopened);
        proposedAgainForNewEnd += changedPlans.proposedAgain;
        await step(100);
        return {
          ...overdue,
          withdrawn,
          givenOnStoppedPlans,
          deathsTakenBack,
          closedPlanAlertsTold,
          failingWork,
          plansCompletedAtTheirEnd: plansAtTheirEnd.completed,
          plansReopenedForTheirNewEnd: plansAtTheirEnd.reopened.length,
          proposedAgainForNewEnd,
          activePlansChanged: changedPlans.plans,
          notLinkedPlansReleased,
          givenDuringInfusionsInError,
          pausedHeld,
          pausedReleased,
          contraindications: recorded,
          ordersHeld: held,
          holdsReleased: released,
          ordersClosed: closed,
          deletedTasksWithdrawn,
          returnedForReview: returned,
        };
      }
      case JOBS.reconcileProcedures: {
        // One reconciliation job: completed infusions, then recorded scores.
        const infusions = await this.poller.reconcile();
        return { ...infusions, scores: await this.scores.reconcile() };
      }
      case JOBS.sweepReminders:
        return this.reminders.sweep();
      case JOBS.reviveDeadLetters: {
        // Jobs of every queue that spent their attempts (a FHIR or mail server down past their backoff), tried again.
        const run = await this.deadLetters.revive(Date.now(), (percent) => job.updateProgress(percent));
        for (const [queue, n] of Object.entries(run.revived)) this.queueMetrics.revived.inc({ queue }, n);
        for (const [queue, n] of Object.entries(run.givenUp)) this.queueMetrics.givenUp.inc({ queue }, n);
        return run;
      }
      case JOBS.recheckContraindications: {
        const { reference } = job.data as RecheckContraindicationsJob;
        // A contraindication resolved outside this service: its plans' holds are lifted.
        if (reference.startsWith('DetectedIssue/')) return this.planChanges.issueChanged(reference.split('/')[1]);
        // A protocol changed or deleted on the FHIR server: the plans following it checked against it now.
        if (reference.startsWith('PlanDefinition/')) return this.protocolChanges.changed(reference.split('/')[1]);
        // An infusion recorded in error (or deleted) after its follow-ups: its plan held until a clinician puts it right.
        // Re-timed after them: their windows counted again from its time now. Each finds nothing to do in the other case.
        if (reference.startsWith('Procedure/')) {
          const procedureId = reference.split('/')[1];
          // One charted naming no plan, whose issue asked a clinician to link it: resolved, its plans checked again.
          const released = await this.unlinkedInfusions.heard(procedureId);
          for (const carePlan of released) await this.contraindications.recheckFor(carePlan);
          return {
            ...(await this.infusionsInError.heard(procedureId)),
            ...(await this.retimedInfusions.heard(procedureId)),
            ...(released.length ? { notLinkedPlansReleased: released.length } : {}),
          };
        }
        // A patient recorded as deceased: the plans this service follows for them ended, what they hold withdrawn.
        if (reference.startsWith('Patient/')) return this.deceasedPatients.heard(reference.split('/')[1]);
        return this.contraindications.recheckFor(reference);
      }
      case JOBS.checkDoneElsewhere:
        return this.checksDoneElsewhere.handle((job.data as CheckDoneElsewhereJob).taskId, new Date(), {
          retry: job.attemptsMade > 0,
        });
      case JOBS.checkAnsweredElsewhere:
        return this.checksAnsweredElsewhere.handle((job.data as CheckAnsweredElsewhereJob).responseId);
      case JOBS.appointmentBooked:
        return this.bookings.handle((job.data as AppointmentBookedJob).appointmentId);
      case JOBS.sessionApproved:
        return this.bookings.forApprovedSession((job.data as SessionApprovedJob).taskId);
      // Whichever of the pump's record and this service's closing of its order lands last finds the other: a closing
      // that crossed the pump is undone first (the session open again, or answered by its infusion).
      case JOBS.administrationRecorded: {
        return this.administrations.heard((job.data as AdministrationRecordedJob).administrationId);
      }
      case JOBS.orderChanged: {
        return this.ordersChanged.heard((job.data as OrderChangedJob).orderId);
      }
      case JOBS.taskDeleted:
        return this.deletedTasks.heard((job.data as TaskDeletedJob).taskId);
      case JOBS.taskChangedInEhr:
        return this.tasksChangedInEhr.heard((job.data as TaskChangedInEhrJob).taskId);
      case JOBS.withdrawStoppedPlan:
        return this.planChanges.planChanged((job.data as WithdrawStoppedPlanJob).carePlanId);
      default:
        throw new Error(`unknown maintenance job ${job.name}`);
    }
  }
}
