import { Injectable, Logger } from '@nestjs/common';
import { FhirClient, FhirVersionConflictError, updateEntry } from '@kc/fhir';
import { withdrawalsForStoppedPlans } from '@kc/followups';
import { changeProvenance, THIS_SERVICE } from '@kc/task-states';
import { OpenTasksReader, type OpenTasks } from './open-tasks';

/**
 * Withdraws the Tasks awaiting approval on plans an EHR stopped (withdrawalsForStoppedPlans), each with its draft
 * proposal and a Provenance naming the service as the author in one transaction, If-Match on both writes: a clinician's decision made meanwhile wins, and the Task is looked
 * at again next time. Runs with the overdue sweep (OVERDUE_SWEEP_CRON), and for one plan when a Subscription
 * notifies a CarePlan change; until then the approval guard refuses them.
 */
@Injectable()
export class StoppedPlanSweep {
  private readonly logger = new Logger(StoppedPlanSweep.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly reader: OpenTasksReader,
  ) {}

  /** Every Task awaiting approval (with the overdue sweep, OVERDUE_SWEEP_CRON), or those of a read already made. */
  async sweep(now = new Date(), waiting?: OpenTasks): Promise<{ withdrawn: number; checked: number }> {
    return this.withdraw(waiting ?? (await this.reader.all()), now);
  }

  /** One plan's Tasks awaiting approval, when a notification says the plan changed. */
  async sweepPlan(carePlanId: string, now = new Date()): Promise<{ withdrawn: number; checked: number }> {
    return this.withdraw(await this.reader.read({ 'based-on': `CarePlan/${carePlanId}` }), now);
  }

  private async withdraw(
    { awaiting: tasks, carePlans, proposals }: OpenTasks,
    now: Date,
  ): Promise<{ withdrawn: number; checked: number }> {
    let withdrawn = 0;
    for (const w of withdrawalsForStoppedPlans({ tasks, carePlans, proposals, now })) {
      const writes = [
        { resource: w.withdrawn, read: w.task },
        ...(w.proposal ? [{ resource: w.proposal.cancelled, read: w.proposal.read }] : []),
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
        if (!(err instanceof FhirVersionConflictError)) throw err;
      }
    }
    if (withdrawn) this.logger.log({ msg: 'withdrew tasks of stopped plans', withdrawn, checked: tasks.length });
    return { withdrawn, checked: tasks.length };
  }
}
