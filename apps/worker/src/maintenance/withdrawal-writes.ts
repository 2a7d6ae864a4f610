import type { BundleEntry, CommunicationRequest, Resource, Task } from '@medplum/fhirtypes';
import { FhirClient, updateEntry } from '@kc/fhir';
import { carePlanReferenceOf } from '@kc/followups';
import { openOrdersOfSessions } from '@kc/nest-core';
import {
  cancelledProposal,
  changeProvenance,
  openOrdersOfSession,
  sessionBegunBy,
  THIS_SERVICE,
  type OpenOrder,
} from '@kc/task-states';

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

/**
 * The service's change of a Task's requests (a withdrawal, a session answered), or of a plan (ended for a death), as
 * one transaction: each write with If-Match on what was read, and a Provenance naming the service as who changed them,
 * from which version of the Task or plan (`revised`), why, and what showed it (`sources`).
 */
export function serviceChangeEntries(
  writes: { resource: Resource; read: Resource }[],
  revised: Resource,
  why: { activity: string; reason?: string; sources?: string[] },
  now: Date,
): BundleEntry[] {
  const provenance = changeProvenance({
    targets: writes.map(({ resource }) => ({ reference: `${resource.resourceType}/${resource.id}` })),
    revisionOf: { reference: `${revised.resourceType}/${revised.id}/_history/${revised.meta?.versionId}` },
    who: THIS_SERVICE,
    activity: why.activity,
    now,
    reason: why.reason,
  });
  if (why.sources?.length)
    provenance.entity = [
      ...(provenance.entity ?? []),
      ...why.sources.map((reference) => ({ role: 'source' as const, what: { reference } })),
    ];
  return [
    ...writes.map(({ resource, read }) => updateEntry(resource, read.meta?.versionId)),
    { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
  ];
}

/**
 * The orders of approved sessions just withdrawn, read again once the withdrawal has landed (one batch): an order of a
 * session's chain still open is the EHR's replacement of its order written between the withdrawal's read and its write
 * (the EHR's cancel of the order it replaced never sent), withdrawn now as the withdrawal would have had it read it, with
 * the service's Provenance; one the pump has begun is left to its infusion. A transaction per session, only for one
 * that has such an order. Since session 56 (before, it stayed active under the withdrawn session); a clinician's
 * decisions do the same (CrossedEhrOrders).
 */
export async function withdrawCrossedOrders(
  fhir: FhirClient,
  withdrawn: { task: Task; reason: string }[],
  now: Date,
): Promise<number> {
  if (!withdrawn.length) return 0;
  const open = await openOrdersOfSessions(
    fhir,
    withdrawn.map((w) => w.task),
  );
  let closed = 0;
  for (const { task, reason } of withdrawn) {
    const crossed = openOrdersOfSession(open.get(task.id!)).filter((o) => !sessionBegunBy(o.administrations));
    if (!crossed.length) continue;
    const writes = crossed.map(({ order }) => ({ resource: cancelledProposal(order, reason), read: order }));
    const why = `${reason} (the EHR's replacement of its order, written while it was being withdrawn)`;
    await fhir.transaction(serviceChangeEntries(writes, task, { activity: 'withdraw', reason: why }, now));
    closed += crossed.length;
  }
  return closed;
}
