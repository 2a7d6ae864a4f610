import type { BundleEntry, CommunicationRequest, Resource, Task } from '@medplum/fhirtypes';
import { FhirClient, updateEntry } from '@kc/fhir';
import { carePlanReferenceOf } from '@kc/followups';
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
