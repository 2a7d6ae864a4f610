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

/**
 * The record that replaced a deleted one (`Patient/<id>`): a merge that deleted the record merged away leaves the
 * record kept naming it in a `replaces` link (FHIR's Patient/$merge). One search of the records linking it; a record
 * that links it otherwise (`seealso`, `refer`) did not replace it. Undefined when none did.
 */
export async function recordReplacing(fhir: FhirClient, deleted: string): Promise<Patient | undefined> {
  const linking = await fhir.searchAll<Patient>('Patient', { link: deleted, _count: 10 });
  return linking.find((p) => (p.link ?? []).some((l) => l.type === 'replaces' && l.other.reference === deleted));
}
