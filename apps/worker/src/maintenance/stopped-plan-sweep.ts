import { Injectable, Logger } from '@nestjs/common';
import { FhirClient, skipsStaleWrite, type RaceHandling } from '@kc/fhir';
import { approvedOnEndedPlans, withdrawalsForStoppedPlans } from '@kc/followups';
import { OpenTasksReader, type OpenTasks } from './open-tasks';
import { ordersAndRemindersOf, requestWrites, withdrawalEntries } from './withdrawal-writes';

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
    // The approved Tasks of stopped plans (few: each is withdrawn once) have orders and reminders to read.
    const { orders, reminders } = await ordersAndRemindersOf(this.fhir, approvedOnEndedPlans(tasks, carePlans));
    let withdrawn = 0;
    for (const w of withdrawalsForStoppedPlans({ tasks, carePlans, proposals, orders, reminders, now })) {
      const writes = [{ resource: w.withdrawn, read: w.task }, ...requestWrites(w)];
      // Who withdrew it and why, in the same transaction: the service, not a clinician.
      try {
        await this.fhir.transaction(withdrawalEntries(writes, w.task, w.withdrawn.statusReason?.text, now));
        withdrawn++;
      } catch (err) {
        if (!skipsStaleWrite(err, raced)) throw err;
      }
    }
    if (withdrawn) this.logger.log({ msg: 'withdrew tasks of stopped plans', withdrawn, checked: tasks.length });
    return { withdrawn, checked: tasks.length };
  }
}
