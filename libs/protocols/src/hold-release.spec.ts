import type { DetectedIssue, Procedure } from '@medplum/fhirtypes';
import { howReleased } from './hold-release';
import { infusionNotLinkedIssue } from './infusion-not-linked';
import { INFUSION_RECORDED_IN_ERROR } from './infusion-in-error';
import { PROTOCOL_NOT_FOUND } from './protocol-not-found';

const coded = (coding: { system?: string; code?: string }): DetectedIssue => ({
  resourceType: 'DetectedIssue',
  status: 'preliminary',
  code: { coding: [coding] },
});

describe('what releases an order an issue holds, in the words the held order ends with', () => {
  it('a contraindication: a clinician’s override with a reason', () => {
    expect(howReleased(coded({ system: 'http://snomed.info/sct', code: '77386006' }))).toBe(
      "A clinician's override with a reason releases it.",
    );
  });

  it('a protocol not found: posting it again too; an infusion in error: planning again; an infusion not linked: linking it', () => {
    expect(howReleased(coded(PROTOCOL_NOT_FOUND))).toMatch(/^Posting its care plan's protocol again/);
    expect(howReleased(coded(INFUSION_RECORDED_IN_ERROR))).toMatch(/^A clinician planning again without the infusion/);
    const procedure: Procedure & { id: string } = {
      resourceType: 'Procedure',
      id: 'inf-1',
      status: 'completed',
      subject: { reference: 'Patient/p1' },
      performedDateTime: '2027-01-04T10:00:00Z',
    };
    const notLinked = infusionNotLinkedIssue({
      procedure,
      carePlans: ['CarePlan/cp-1'],
      patient: { reference: 'Patient/p1' },
      identified: '2027-01-04T11:00:00Z',
    });
    expect(howReleased(notLinked)).toMatch(/^A clinician linking the infusion to its care plan/);
  });
});
