import type { Patient } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { furtherLinkedRecords, linkedPatientRecords, personRecords } from '@kc/protocols';

/** How many steps along the links a walk follows, and how many records it reads at most. */
const MAX_LINK_STEPS = 4;
const MAX_LINKED_RECORDS = 20;

/** The records of the same person a patient's record links (linkedRecordsOf): as `Patient/<id>`, and as read. */
export interface PersonRecords {
  linked: string[];
  records: Patient[];
}

/**
 * The records of the same person a patient's record links, and those they link in turn (a record merged twice: A into
 * B, B into C; C links B only, B links A), as `Patient/<id>`, with the linked records as read (`records`: whether
 * deceased, say). One search per step beyond the record's own links, only for a record that links others (since
 * session 49; before, only the record's own links were read, so a pregnancy under C went unseen by a plan under A).
 * At most MAX_LINK_STEPS steps and MAX_LINKED_RECORDS records.
 */
export async function linkedRecordsOf(fhir: FhirClient, patient: Patient | undefined): Promise<PersonRecords> {
  return recordsLinkedFrom(fhir, [`Patient/${patient?.id}`], linkedPatientRecords(patient));
}

/**
 * The walk of linkedRecordsOf from records whose own links are known (`records`, as `Patient/<id>`, and the records
 * they link, `links`): those and the records they link in turn, at most MAX_LINK_STEPS steps and MAX_LINKED_RECORDS
 * records for each of `records`, one search per step; `records` themselves left out. For the clinician page, which reads the patients first
 * (a name search's matches, a row's patient) and walks on only for those that link others (since session 50; before,
 * it followed one step).
 */
export async function recordsLinkedFrom(fhir: FhirClient, records: string[], links: string[]): Promise<PersonRecords> {
  const known = new Set([...records, ...links]);
  const read: Patient[] = [];
  let next = links.filter((r) => !records.includes(r));
  // At most MAX_LINKED_RECORDS for each record walked from.
  const most = MAX_LINKED_RECORDS * records.length;
  for (let step = 0; next.length && step < MAX_LINK_STEPS && known.size - records.length <= most; step++) {
    const found = await fhir.searchAll<Patient>('Patient', {
      _id: next.map((r) => r.slice('Patient/'.length)).join(','),
      _count: 100,
    });
    read.push(...found);
    next = furtherLinkedRecords(found, known);
    for (const r of next) known.add(r);
  }
  for (const r of records) known.delete(r);
  return { linked: [...known], records: read };
}

/**
 * A patient's record and the records of the same person it links, at any step (linkedRecordsOf), as `Patient/<id>`,
 * this one first: the subject of a search for what is recorded under any of them. One read of the record (since
 * session 48), more only for a record that links others; a record gone gives itself alone.
 */
export async function personRecordsOf(fhir: FhirClient, patient: string): Promise<string[]> {
  const id = patient.slice('Patient/'.length);
  const { linked } = await linkedRecordsOf(fhir, await fhir.readIfExists<Patient>('Patient', id));
  return personRecords(id, linked);
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
