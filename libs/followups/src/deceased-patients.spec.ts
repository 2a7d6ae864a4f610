import type { CarePlan, CommunicationRequest } from '@medplum/fhirtypes';
import { isRecordedDeceased, planEndedForDeath } from './deceased-patients';
import { deliveryDecision } from './reminders';

const now = new Date('2027-01-05T00:00:00Z');
const plan = (status: CarePlan['status']): CarePlan => ({
  resourceType: 'CarePlan',
  status,
  intent: 'plan',
  subject: { reference: 'Patient/p1' },
});

describe('a patient recorded as deceased', () => {
  it('is one with deceasedBoolean true or a deceasedDateTime', () => {
    expect(isRecordedDeceased({ deceasedBoolean: true })).toBe(true);
    expect(isRecordedDeceased({ deceasedDateTime: '2026-12-01' })).toBe(true);
    expect(isRecordedDeceased({ deceasedBoolean: false })).toBe(false);
    expect(isRecordedDeceased({})).toBe(false);
  });

  it('has each plan still holding care (active, draft, paused) ended, saying why; one over already is left', () => {
    for (const status of ['active', 'draft', 'on-hold'] as const) {
      const ended = planEndedForDeath(plan(status), now);
      expect([ended?.status, ended?.note]).toEqual([
        'revoked',
        [
          {
            time: now.toISOString(),
            text: 'Ended by ketamine-careplans: the patient is recorded as deceased in the EHR',
          },
        ],
      ]);
    }
    for (const status of ['revoked', 'completed', 'entered-in-error'] as const)
      expect(planEndedForDeath(plan(status), now)).toBeUndefined();
  });

  it('is sent no reminder: revoked at its time, whatever else is on record', () => {
    const request: CommunicationRequest = {
      resourceType: 'CommunicationRequest',
      status: 'active',
      occurrenceDateTime: '2027-01-04T09:00:00.000Z',
    };
    const decide = (patient?: { deceasedBoolean?: boolean }) =>
      deliveryDecision({ request, plannedAt: request.occurrenceDateTime!, patient, now });
    expect(decide({ deceasedBoolean: true })).toEqual({
      action: 'revoke',
      why: 'Not sent: the patient is recorded as deceased',
    });
    expect(decide({}).action).toBe('send');
    expect(decide().action).toBe('send');
  });
});
