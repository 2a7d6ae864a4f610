import { Injectable, Logger } from '@nestjs/common';
import type { CommunicationRequest, Task } from '@medplum/fhirtypes';
import { FhirClient, updateEntry } from '@kc/fhir';
import { carePlanReferenceOf, DELETED_TASK_REASON, withdrawalOfDeletedTask } from '@kc/followups';
import { AUTHORISABLE_TYPES, changeProvenance, THIS_SERVICE, type AuthorisableRequest } from '@kc/task-states';
import { openOrdersOf } from './task-orders';

/**
 * A Task deleted on the FHIR server (withdrawalOfDeletedTask): its order still to be given, its draft proposal and its
 * reminders not sent are withdrawn, with a Provenance naming the service, in one transaction with If-Match. Run when
 * the server notifies the deletion, and by the answered-orders sweep for an open order whose Task is gone (a
 * notification missed). A conflict (the EHR changed an order meanwhile) fails the job, whose retry reads again.
 */
@Injectable()
export class DeletedTasks {
  private readonly logger = new Logger(DeletedTasks.name);

  constructor(private readonly fhir: FhirClient) {}

  async heard(taskId: string, now = new Date()): Promise<{ withdrawn: number }> {
    const found = await this.fhir.readEvenIfDeleted<Task>('Task', taskId);
    // There (written again since), or never this server's: nothing was deleted.
    if (!found?.deleted) return { withdrawn: 0 };
    const task = { ...found.resource, id: taskId };
    const proposal = await this.proposalOf(task);
    const proposals = new Map(proposal ? [[task.focus!.reference!, proposal]] : []);
    const carePlan = carePlanReferenceOf(task);
    const [orders, reminders] = await Promise.all([
      openOrdersOf(this.fhir, [task], proposals),
      carePlan
        ? this.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
            'based-on': carePlan,
            status: 'active',
            _count: 200,
          })
        : [],
    ]);
    const withdrawal = withdrawalOfDeletedTask({ task, proposal, open: orders.get(taskId), reminders });
    if (!withdrawal) return { withdrawn: 0 };
    const writes = [
      ...(withdrawal.proposal ? [{ resource: withdrawal.proposal.cancelled, read: withdrawal.proposal.read }] : []),
      ...(withdrawal.order ? [{ resource: withdrawal.order.cancelled, read: withdrawal.order.read }] : []),
      ...withdrawal.reminders.map((r) => ({ resource: r.revoked, read: r.read })),
    ];
    const provenance = changeProvenance({
      targets: writes.map(({ resource }) => ({ reference: `${resource.resourceType}/${resource.id}` })),
      revisionOf: { reference: `Task/${taskId}/_history/${task.meta?.versionId}` },
      who: THIS_SERVICE,
      activity: 'withdraw',
      now,
      reason: DELETED_TASK_REASON,
    });
    await this.fhir.transaction([
      ...writes.map(({ resource, read }) => updateEntry(resource, read.meta!.versionId)),
      { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
    ]);
    this.logger.log({ msg: 'withdrew what a deleted Task authorised', task: taskId, writes: writes.length });
    return { withdrawn: 1 };
  }

  /** The request the Task authorised (its focus), as it is now; none when it names none or it is gone too. */
  private async proposalOf(task: Task): Promise<AuthorisableRequest | undefined> {
    const [type, id] = task.focus?.reference?.split('/') ?? [];
    const authorisable = (AUTHORISABLE_TYPES as readonly string[]).includes(type ?? '');
    if (!authorisable || !id) return undefined;
    return this.fhir.readIfExists<AuthorisableRequest>(type as AuthorisableRequest['resourceType'], id);
  }
}
