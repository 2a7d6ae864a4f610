import type { Patient } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { linkedPatientRecords, personRecords } from '@kc/protocols';

/**
 * A patient's record and the records of the same person it links (a merge, records kept apart: linkedPatientRecords),
 * as `Patient/<id>`, this one first: the subject of a search for what is recorded under any of them. One read of the
 * record (since session 48); a record gone gives itself alone.
 */
export async function personRecordsOf(fhir: FhirClient, patient: string): Promise<string[]> {
  const id = patient.slice('Patient/'.length);
  return personRecords(id, linkedPatientRecords(await fhir.readIfExists<Patient>('Patient', id)));
}
