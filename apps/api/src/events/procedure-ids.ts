import type { Resource } from '@medplum/fhirtypes';
import { isResourceId } from '@kc/common';

/**
 * The Procedure ids a notification body names: a Procedure itself (Medplum, HAPI with payload), or a
 * notification/transaction Bundle holding Procedures. Only ids are taken: the worker re-reads each Procedure
 * from the FHIR server, so a forged body can at most make it look at a real resource.
 */
export function procedureIdsIn(body: unknown): string[] {
  const resource = body as Resource | undefined;
  if (!resource || typeof resource !== 'object') return [];
  if (resource.resourceType === 'Procedure') return isResourceId(resource.id) ? [resource.id] : [];
  if (resource.resourceType === 'Bundle') return (resource.entry ?? []).flatMap((e) => procedureIdsIn(e.resource));
  return [];
}
