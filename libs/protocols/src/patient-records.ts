import type { Patient } from '@medplum/fhirtypes';

/**
 * The other records of the same person a Patient links (`Patient.link`, every type: FHIR's Patient/$merge writes
 * `replaced-by` on the record merged away and `replaces` on the one kept; `seealso` and `refer` name records of the same
 * person kept apart), as `Patient/<id>`; RelatedPersons left out. A clinic's records of one person may be split until
 * its staff merge them, and a merge need not move what was recorded under the old record: a contraindication, a death
 * recorded on either is the person's (since session 48).
 */
export function linkedPatientRecords(patient: Patient | undefined): string[] {
  const self = `Patient/${patient?.id}`;
  return [
    ...new Set(
      (patient?.link ?? []).flatMap((l) =>
        /^Patient\/[^/]+$/.test(l.other.reference ?? '') && l.other.reference !== self ? [l.other.reference!] : [],
      ),
    ),
  ];
}

/**
 * The person's records the records read link beyond those known (a record merged twice: A into B, B into C; C links B
 * only, B links A), as `Patient/<id>`: the next step of a walk along the links (personRecordsOf in nest-core).
 */
export function furtherLinkedRecords(read: Patient[], known: Set<string>): string[] {
  return [...new Set(read.flatMap((p) => linkedPatientRecords(p)))].filter((r) => !known.has(r));
}

/** The person's records, this one first: the subject of a search that reads what was recorded under any of them. */
export function personRecords(patientId: string, linked: string[]): string[] {
  return [...new Set([`Patient/${patientId}`, ...linked])];
}

/** The record this one was merged into (`replaced-by`), as `Patient/<id>`; undefined for a record in use. */
export function replacedBy(patient: Patient): string | undefined {
  const link = (patient.link ?? []).find(
    (l) => l.type === 'replaced-by' && /^Patient\/[^/]+$/.test(l.other.reference ?? ''),
  );
  return link?.other.reference;
}
