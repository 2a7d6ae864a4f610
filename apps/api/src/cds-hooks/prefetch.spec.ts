import type { OutcomeException } from '@kc/common';
import { aboutPatient, checkPatientId, onlyAboutPatient, prefetchTemplate, PATIENT_TOKEN } from './prefetch';

describe('prefetch templates and patient scoping', () => {
  it('renders search templates with the token kept and values encoded', () => {
    expect(prefetchTemplate({ key: 'p', resourceType: 'Patient', readPatient: true })).toBe(
      'Patient/{{context.patientId}}',
    );
    expect(
      prefetchTemplate({
        key: 'x',
        resourceType: 'Observation',
        params: { subject: `Patient/${PATIENT_TOKEN}`, code: 'http://loinc.org|85354-9,a b', _count: '1' },
      }),
    ).toBe('Observation?subject=Patient/{{context.patientId}}&code=http://loinc.org|85354-9,a%20b&_count=1');
  });

  it('keeps only records about the patient', () => {
    const mine = {
      resourceType: 'Task' as const,
      status: 'requested' as const,
      intent: 'plan' as const,
      for: { reference: 'Patient/p1' },
    };
    const absolute = { ...mine, for: { reference: 'https://ehr.example/fhir/Patient/p1' } };
    const theirs = { ...mine, for: { reference: 'Patient/p10' } };
    expect(aboutPatient(absolute, 'p1')).toBe(true);
    const kept = onlyAboutPatient(
      {
        resourceType: 'Bundle',
        type: 'searchset',
        entry: [{ resource: mine }, { resource: theirs }, { resource: absolute }],
      },
      'p1',
    );
    expect(kept.entry).toHaveLength(2);
  });

  it('context.patientId must be a FHIR id', () => {
    expect(checkPatientId('abc-1.2')).toBe('abc-1.2');
    let refused: unknown;
    try {
      checkPatientId('a&_id=b');
    } catch (err) {
      refused = err;
    }
    expect((refused as OutcomeException).getStatus()).toBe(400);
    expect(JSON.stringify((refused as OutcomeException).getResponse())).toContain(
      'context.patientId must be a FHIR id',
    );
    expect(() => checkPatientId(undefined)).toThrow();
  });
});
