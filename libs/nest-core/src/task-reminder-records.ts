import type { CommunicationRequest } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
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
  const onPlan = await fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
    'based-on': `CarePlan/${carePlanId}`,
    _count: 200,
  });
  return onPlan.filter((r) => isReminderAbout(r, taskId));
}
