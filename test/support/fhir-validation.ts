import { validateResource } from '@medplum/core';
import type { Resource, ResourceType } from '@medplum/fhirtypes';
import type { TestService } from './test-service';

const WRITTEN: ResourceType[] = [
  'CarePlan',
  'RequestGroup',
  'Task',
  'MedicationRequest',
  'ServiceRequest',
  'CommunicationRequest',
  'Appointment',
  'Goal',
  'DetectedIssue',
  'Provenance',
];

/**
 * Every resource of the kinds the service writes, as the FHIR server holds it, validated against the R4
 * definitions with Medplum's validator: an invalid resource fails the test that wrote it.
 */
export async function expectEverythingValid(service: TestService): Promise<number> {
  let checked = 0;
  for (const type of WRITTEN) {
    for (const resource of await service.fhir.searchAll<Resource>(type, { _count: 1000 })) {
      try {
        validateResource(resource);
      } catch (err) {
        throw new Error(`${type}/${resource.id} is not valid R4: ${(err as Error).message}`, { cause: err });
      }
      checked++;
    }
  }
  return checked;
}
