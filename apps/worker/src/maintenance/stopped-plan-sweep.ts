import { Injectable, Logger } from '@nestjs/common';
import type { CarePlan, Resource, Task } from '@medplum/fhirtypes';
import { FhirClient, FhirVersionConflictError, includedOf, matchesOf, updateEntry, type SearchParams } from '@kc/fhir';
import { withdrawalsForStoppedPlans } from '@kc/followups';
import { changeProvenance, isAuthorisable, THIS_SERVICE, type AuthorisableRequest } from '@kc/task-states';

/**
 * Withdraws the Tasks awaiting approval on plans an EHR stopped (withdrawalsForStoppedPlans), each with its draft
 * proposal and a Provenance naming the service as the author in one transaction, If-Match on both writes: a clinician's decision made meanwhile wins, and the Task is looked
 * at again next time. Runs with the overdue sweep (OVERDUE_SWEEP_CRON), and for one plan when a Subscription
 * notifies a CarePlan change; until then the approval guard refuses them.
 */
@Injectable()
export class StoppedPlanSweep {
  private readonly logger = new Logger(StoppedPlanSweep.name);

  constructor(private readonly fhir: FhirClient) {}

  /** Every Task awaiting approval (with the overdue sweep, OVERDUE_SWEEP_CRON). */
  sweep(now = new Date()): Promise<{ withdrawn: number; checked: number }> {
    // By `_lastUpdated`, so Medplum pages by cursor.
    return this.withdraw({ status: 'draft', _sort: '_lastUpdated', _count: 200 }, now);
  }

  /** One plan's Tasks awaiting approval, when a notification says the plan changed. */
  sweepPlan(carePlanId: string, now = new Date()): Promise<{ withdrawn: number; checked: number }> {
    return this.withdraw({ 'based-on': `CarePlan/${carePlanId}`, status: 'draft', _count: 200 }, now);
  }

  private async withdraw(params: SearchParams, now: Date): Promise<{ withdrawn: number; checked: number }> {
    const tasks: Task[] = [];
    const carePlans = new Map<string, CarePlan>();
    const proposals = new Map<string, AuthorisableRequest>();
    // The Tasks with each one's CarePlan and proposal.
    const pages = this.fhir.searchPages<Task>('Task', { ...params, _include: ['Task:based-on', 'Task:focus'] });
    for await (const page of pages) {
      tasks.push(...matchesOf<Task>(page));
      for (const resource of includedOf<Resource>(page)) {
        const ref = `${resource.resourceType}/${resource.id}`;
        if (resource.resourceType === 'CarePlan') carePlans.set(ref, resource);
        else if (isAuthorisable(resource)) proposals.set(ref, resource);
      }
    }
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
