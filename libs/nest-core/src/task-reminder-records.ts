import { randomUUID } from 'node:crypto';
import type { BundleEntry, CommunicationRequest } from '@medplum/fhirtypes';
import { FhirClient, updateEntry } from '@kc/fhir';
import { isReminderAbout } from '@kc/followups';

/**
 * The reminders on record about a Task, any status: its plan's, those about it kept (CommunicationRequest has no search
 * parameter for `about`). One search. What a decision on the Task (the API) or an appointment booking it (the worker)
 * re-times or revokes.
 */
export async function remindersAboutTask(
  fhir: FhirClient,
  carePlanId: string,
  taskId: string,
): Promise<CommunicationRequest[]> {
  return (await remindersOfPlan(fhir, carePlanId)).filter((r) => isReminderAbout(r, taskId));
}

/** The reminders on record under a plan, any status, about any of its Tasks: one search. */
export function remindersOfPlan(fhir: FhirClient, carePlanId: string): Promise<CommunicationRequest[]> {
  return fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
    'based-on': `CarePlan/${carePlanId}`,
    _count: 200,
  });
}

/**
 * A Task's reminder changes as transaction entries: those on record moved (If-Match on the version read), those
 * missing created (POST under a urn:uuid, for a Provenance in the same transaction to name).
 */
export function reminderEntries(changes: {
  create: CommunicationRequest[];
  move: CommunicationRequest[];
}): (BundleEntry & { fullUrl?: string })[] {
  return [
    ...changes.move.map((r) => updateEntry(r, r.meta?.versionId)),
    ...changes.create.map((resource) => ({
      fullUrl: `urn:uuid:${randomUUID()}`,
      resource,
      request: { method: 'POST' as const, url: 'CommunicationRequest' },
    })),
  ];
}
