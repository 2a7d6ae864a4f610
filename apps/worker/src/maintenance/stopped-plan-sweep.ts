import { Injectable, Logger } from '@nestjs/common';
import type { CommunicationRequest, Task } from '@medplum/fhirtypes';
import { FhirClient, skipsStaleWrite, updateEntry, type RaceHandling } from '@kc/fhir';
import { approvedOnEndedPlans, carePlanReferenceOf, withdrawalsForStoppedPlans, type OpenOrder } from '@kc/followups';
import { changeProvenance, THIS_SERVICE } from '@kc/task-states';
import { OpenTasksReader, type OpenTasks } from './open-tasks';
import { openOrdersOf } from './task-orders';

/**
 * Withdraws the open Tasks of plans an EHR stopped (withdrawalsForStoppedPlans): awaiting approval with their draft
 * proposals, approved with their orders still to be given, each with its reminders not sent and a Provenance naming
 * the service as the author, in one transaction with If-Match on every write: a clinician's decision made meanwhile
 * wins, and the Task is looked at again next time. Runs with the overdue sweep (OVERDUE_SWEEP_CRON), and for one plan
 * when a Subscription notifies a CarePlan change; until then the approval guard refuses them.
 */
@Injectable()
export class StoppedPlanSweep {
  private readonly logger = new Logger(StoppedPlanSweep.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly reader: OpenTasksReader,
  ) {}

  /**
   * Every open Task (with the overdue sweep, OVERDUE_SWEEP_CRON), or those of a read already made. `raced: 'fail'` (a
   * job told of the plan): a withdrawal that lost a race fails, for the job to run again.
   */
  async sweep(
    now = new Date(),
    open?: OpenTasks,
    raced: RaceHandling = 'skip',
  ): Promise<{ withdrawn: number; checked: number }> {
    return this.withdraw(open ?? (await this.reader.all()), now, raced);
  }

  private async withdraw(
    open: OpenTasks,
    now: Date,
    raced: RaceHandling,
  ): Promise<{ withdrawn: number; checked: number }> {
    const { carePlans, proposals } = open;
    const tasks = [...open.awaiting, ...open.approved, ...open.held];
    const { orders, reminders } = await this.ordersAndReminders(approvedOnEndedPlans(tasks, carePlans), proposals);
    let withdrawn = 0;
    for (const w of withdrawalsForStoppedPlans({ tasks, carePlans, proposals, orders, reminders, now })) {
      const writes = [
        { resource: w.withdrawn, read: w.task },
        ...(w.proposal ? [{ resource: w.proposal.cancelled, read: w.proposal.read }] : []),
        ...(w.order ? [{ resource: w.order.cancelled, read: w.order.read }] : []),
        ...w.reminders.map((r) => ({ resource: r.revoked, read: r.read })),
      ];
      // Who withdrew it and why, in the same transaction: the service, not a clinician.
      const provenance = changeProvenance({
        targets: writes.map(({ resource }) => ({ reference: `${resource.resourceType}/${resource.id}` })),
        revisionOf: { reference: `Task/${w.task.id}/_history/${w.task.meta!.versionId}` },
        who: THIS_SERVICE,
        activity: 'withdraw',
        now,
        reason: w.withdrawn.statusReason?.text,
      });
      try {
        await this.fhir.transaction([
          ...writes.map(({ resource, read }) => updateEntry(resource, read.meta!.versionId)),
          { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
        ]);
        withdrawn++;
      } catch (err) {
        if (!skipsStaleWrite(err, raced)) throw err;
      }
    }
    if (withdrawn) this.logger.log({ msg: 'withdrew tasks of stopped plans', withdrawn, checked: tasks.length });
    return { withdrawn, checked: tasks.length };
  }

  /**
   * For the approved Tasks of stopped plans (few: each is withdrawn once): their orders still to be given, with what
   * the pump recorded of them, and their plans' active reminders. Nothing is read when there are none.
   */
  private async ordersAndReminders(
    approved: Task[],
    proposals: OpenTasks['proposals'],
  ): Promise<{ orders: Map<string, OpenOrder>; reminders: CommunicationRequest[] }> {
    if (!approved.length) return { orders: new Map(), reminders: [] };
    const plans = [...new Set(approved.map(carePlanReferenceOf).filter((r): r is string => Boolean(r)))];
    const [orders, reminders] = await Promise.all([
      openOrdersOf(this.fhir, approved, proposals),
      this.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
        'based-on': plans.join(','),
        status: 'active',
        _count: 200,
      }),
    ]);
    return { orders, reminders };
  }
}
