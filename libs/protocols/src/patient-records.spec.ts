import type { Patient } from '@medplum/fhirtypes';
import { furtherLinkedRecords, linkedPatientRecords, personRecords, replacedBy } from './patient-records';

const patient = (link: Patient['link']): Patient => ({ resourceType: 'Patient', id: 'a', link });

describe('the records of one person a Patient links', () => {
  it('every link type to another Patient, once; RelatedPersons and itself left out', () => {
    expect(
      linkedPatientRecords(
        patient([
          { other: { reference: 'Patient/b' }, type: 'replaced-by' },
          { other: { reference: 'Patient/c' }, type: 'seealso' },
          { other: { reference: 'Patient/b' }, type: 'refer' },
          { other: { reference: 'RelatedPerson/r' }, type: 'seealso' },
          { other: { reference: 'Patient/a' }, type: 'seealso' },
        ]),
      ),
    ).toEqual(['Patient/b', 'Patient/c']);
    expect(linkedPatientRecords(patient(undefined))).toEqual([]);
    expect(linkedPatientRecords(undefined)).toEqual([]);
  });

  it('a search subject: this record first, each once', () => {
    expect(personRecords('a', ['Patient/b', 'Patient/a'])).toEqual(['Patient/a', 'Patient/b']);
  });

  it('the record it was merged into (replaced-by), and none for one in use', () => {
    expect(replacedBy(patient([{ other: { reference: 'Patient/b' }, type: 'replaced-by' }]))).toBe('Patient/b');
    expect(replacedBy(patient([{ other: { reference: 'Patient/b' }, type: 'replaces' }]))).toBeUndefined();
  });

  it('the next step of a walk along the links: what the records read link beyond those known, each once', () => {
    const b: Patient = {
      resourceType: 'Patient',
      id: 'b',
      link: [
        { other: { reference: 'Patient/a' }, type: 'replaces' },
        { other: { reference: 'Patient/c' }, type: 'replaced-by' },
      ],
    };
    const d: Patient = {
      resourceType: 'Patient',
      id: 'd',
      link: [{ other: { reference: 'Patient/c' }, type: 'seealso' }],
    };
    expect(furtherLinkedRecords([b, d], new Set(['Patient/a', 'Patient/b', 'Patient/d']))).toEqual(['Patient/c']);
    expect(furtherLinkedRecords([b], new Set(['Patient/a', 'Patient/b', 'Patient/c']))).toEqual([]);
  });
});
