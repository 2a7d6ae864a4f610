import { infusionJobId, jobAbout, JOBS } from './jobs';
import { QUEUES } from './queue-names';

describe('infusionJobId', () => {
  it('is the same for the same Procedure, whoever delivers it', () => {
    expect(infusionJobId('123')).toBe(`${JOBS.infusionCompleted}-123`);
    expect(infusionJobId('123')).toBe(infusionJobId('123'));
    expect(infusionJobId('123')).not.toBe(infusionJobId('124'));
  });

  it('replaces what BullMQ forbids in custom ids (":") and anything outside the FHIR id alphabet', () => {
    expect(infusionJobId('a:b')).toBe(`${JOBS.infusionCompleted}-a_b`);
    expect(infusionJobId('a/b c')).toBe(`${JOBS.infusionCompleted}-a_b_c`);
    expect(infusionJobId('x.y-z')).toBe(`${JOBS.infusionCompleted}-x.y-z`);
  });

  it('names one queue per kind of work', () => {
    expect(new Set(Object.values(QUEUES)).size).toBe(Object.values(QUEUES).length);
  });
});

describe('jobAbout', () => {
  it('names the resource a job is about from its payload, for the dead-letter view; nothing for a sweep', () => {
    expect(jobAbout({ procedureId: 'p1', source: 'api' })).toBe('Procedure/p1');
    expect(jobAbout({ responseId: 'r1' })).toBe('QuestionnaireResponse/r1');
    expect(jobAbout({ communicationRequestId: 'c1', sendAt: '2027-01-01T08:00:00Z' })).toBe('CommunicationRequest/c1');
    expect(jobAbout({ reference: 'DetectedIssue/d1' })).toBe('DetectedIssue/d1');
    expect(jobAbout({})).toBeUndefined();
    expect(jobAbout(undefined)).toBeUndefined();
  });
});
