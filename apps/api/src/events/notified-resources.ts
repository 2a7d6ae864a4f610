import type {
  DetectedIssue,
  MedicationRequest,
  Patient,
  Procedure,
  Resource,
  ResourceType,
  Task,
} from '@medplum/fhirtypes';
import { isResourceId } from '@kc/common';
import { isRecordedDeceased, recordedWithTask } from '@kc/followups';
import { plansClearedBy } from '@kc/protocols';
import { isOpenOrder } from '@kc/task-states';

/**
 * The Procedure ids a notification body names: a Procedure itself (Medplum, HAPI with payload), or a
 * notification/transaction Bundle holding Procedures. Only ids are taken: the worker re-reads each Procedure
 * from the FHIR server, so a forged body can at most make it look at a real resource.
 */
export function procedureIdsIn(body: unknown): string[] {
  return idsIn(body, 'Procedure');
}

/**
 * The infusions a notification says were recorded in error, or are completed (ids only: the worker reads each, and its
 * history: taken back, or re-timed, after its follow-ups).
 */
export function procedureRecordIdsIn(body: unknown): string[] {
  return resourcesIn(body, 'Procedure')
    .filter((p) => ['entered-in-error', 'completed'].includes((p as Procedure).status ?? ''))
    .map((p) => p.id!);
}

/** Patients recorded as deceased (Patient.deceased[x]): ids only, re-read by the worker. */
export function deceasedPatientIdsIn(body: unknown): string[] {
  return resourcesIn(body, 'Patient')
    .filter((p) => isRecordedDeceased(p as Patient))
    .map((p) => p.id!);
}

/** The same for Observations (recorded scores): ids only, re-read by the worker. */
export function observationIdsIn(body: unknown): string[] {
  return idsIn(body, 'Observation');
}

/** The Tasks a notification carries, as sent (the worklist index applies them when they carry meta.lastUpdated). */
export function tasksIn(body: unknown): Task[] {
  return resourcesIn(body, 'Task') as Task[];
}

/** The Conditions a notification names (ids only: the worker reads each for its patient). */
export function conditionIdsIn(body: unknown): string[] {
  return idsIn(body, 'Condition');
}

/** The CarePlans a notification names (ids only: the worker reads each plan's status itself). */
export function carePlanIdsIn(body: unknown): string[] {
  return idsIn(body, 'CarePlan');
}

/** Appointments in a notification (the clinic's scheduling system booked a session). */
export function appointmentIdsIn(body: unknown): string[] {
  return idsIn(body, 'Appointment');
}

/**
 * The closed orders a notification names: an EHR closing an approved session's order, one this service wrote or one
 * of the EHR's a session was approved on (`onOrder`; only the worker can tell, from the Tasks naming it). Ids only:
 * the worker re-reads each. Open orders change nothing here.
 */
export function closedOrderIdsIn(body: unknown): string[] {
  return (resourcesIn(body, 'MedicationRequest') as MedicationRequest[])
    .filter((o) => !isOpenOrder(o))
    .map((o) => o.id!);
}

/**
 * The contraindications a notification names that implicate a plan and no longer hold it back (withdrawn, or overridden
 * in the EHR rather than through `$override`): the worker lifts their holds. Ids only: the worker re-reads each.
 */
export function clearedIssueIdsIn(body: unknown): string[] {
  return (resourcesIn(body, 'DetectedIssue') as DetectedIssue[])
    .filter((i) => plansClearedBy(i).length)
    .map((i) => i.id!);
}

/** The administrations a notification names (ids only: the worker reads each, and the sessions proposed after it). */
export function administrationIdsIn(body: unknown): string[] {
  return resourcesIn(body, 'MedicationAdministration').map((r) => r.id!);
}

/** The answers a notification names (ids only: the worker reads each, and the patient's checks it may answer). */
export function responseIdsIn(body: unknown): string[] {
  // This service's own answers (`$complete`), echoed back, name their Task already.
  return resourcesIn(body, 'QuestionnaireResponse')
    .filter((r) => !recordedWithTask(r))
    .map((r) => r.id!);
}

/** The protocols a notification names (an EHR's PlanDefinition changed: ids only, the worker reads each). */
export function planDefinitionIdsIn(body: unknown): string[] {
  return idsIn(body, 'PlanDefinition');
}

/**
 * The resource a Medplum deletion notification names (`X-Medplum-Deleted-Resource: <Type>/<id>`; its body is `{}`);
 * undefined when the header is absent, an Error when it is not a reference.
 */
export function deletedResourceOf(
  header: string | undefined,
): { resourceType: string; id: string } | Error | undefined {
  if (header === undefined) return undefined;
  const [resourceType, id, ...rest] = header.trim().split('/');
  if (rest.length || !/^[A-Z][A-Za-z]{1,63}$/.test(resourceType) || !isResourceId(id))
    return new Error('X-Medplum-Deleted-Resource is not a <Type>/<id> reference');
  return { resourceType, id };
}

function idsIn(
  body: unknown,
  resourceType:
    'Procedure' | 'Observation' | 'CarePlan' | 'Condition' | 'QuestionnaireResponse' | 'Appointment' | 'PlanDefinition',
): string[] {
  return resourcesIn(body, resourceType).map((r) => r.id!);
}

/** The resources of a type with a valid id, in the body itself or in a notification Bundle's entries. */
function resourcesIn(body: unknown, resourceType: ResourceType, depth = 0): Resource[] {
  if (!isObject(body)) return [];
  const resource = body as Resource;
  if (resource.resourceType === resourceType) return isResourceId(resource.id) ? [resource] : [];
  // A notification Bundle may hold a Bundle (a transaction's); nothing legitimate nests deeper.
  if (resource.resourceType !== 'Bundle' || depth >= 2 || !Array.isArray(resource.entry)) return [];
  return (resource.entry as unknown[]).flatMap((e) =>
    isObject(e) ? resourcesIn((e as { resource?: unknown }).resource, resourceType, depth + 1) : [],
  );
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
