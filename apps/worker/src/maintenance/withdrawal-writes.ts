import type { BundleEntry, CommunicationRequest, Resource, Task } from '@medplum/fhirtypes';
import { FhirClient, updateEntry } from '@kc/fhir';
import { carePlanReferenceOf, type Withdrawal } from '@kc/followups';
import { openOrdersOfSessions } from '@kc/nest-core';
import { changeProvenance, THIS_SERVICE, type OpenOrder } from '@kc/task-states';

/**
 * What withdrawing Tasks reads: their orders still to be given (with what the pump recorded of them) and their plans'
 * active reminders, at once. Nothing is read for no Tasks; no reminders for Tasks naming no plan.
 */
export async function ordersAndRemindersOf(
  fhir: FhirClient,
  tasks: Task[],
): Promise<{ orders: Map<string, OpenOrder>; reminders: CommunicationRequest[] }> {
  if (!tasks.length) return { orders: new Map(), reminders: [] };
  const plans = [...new Set(tasks.map(carePlanReferenceOf).filter((r): r is string => Boolean(r)))];
  const [orders, reminders] = await Promise.all([
    openOrdersOfSessions(fhir, tasks),
    plans.length
      ? fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
          'based-on': plans.join(','),
          status: 'active',
          _count: 200,
        })
      : [],
  ]);
  return { orders, reminders };
}

/** The requests a withdrawal changes, each with the version it was read at (its If-Match). */
export function requestWrites(
  w: Pick<Withdrawal, 'proposal' | 'order' | 'replacements' | 'reminders'>,
): { resource: Resource; read: Resource }[] {
  return [
    ...(w.proposal ? [{ resource: w.proposal.cancelled, read: w.proposal.read }] : []),
    ...(w.order ? [{ resource: w.order.cancelled, read: w.order.read }] : []),
    ...(w.replacements ?? []).map((r) => ({ resource: r.cancelled, read: r.read })),
    ...w.reminders.map((r) => ({ resource: r.revoked, read: r.read })),
  ];
}

/**
 * A withdrawal's transaction: each write with If-Match on what was read, and a Provenance naming the service as who
 * withdrew them, from which version of the Task (`revision`) and why.
 */
export function withdrawalEntries(
  writes: { resource: Resource; read: Resource }[],
  task: Task,
  reason: string | undefined,
  now: Date,
): BundleEntry[] {
  const provenance = changeProvenance({
    targets: writes.map(({ resource }) => ({ reference: `${resource.resourceType}/${resource.id}` })),
    revisionOf: { reference: `Task/${task.id}/_history/${task.meta?.versionId}` },
    who: THIS_SERVICE,
    activity: 'withdraw',
    now,
    reason,
  });
  return [
    ...writes.map(({ resource, read }) => updateEntry(resource, read.meta?.versionId)),
    { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
  ];
}
