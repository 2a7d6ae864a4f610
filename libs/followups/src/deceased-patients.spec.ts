import type { CarePlan, CommunicationRequest } from '@medplum/fhirtypes';
import {
  DEATH_RECORD_CORRECTED,
  isEndedForDeath,
  isRecordedDeceased,
  planEndedForDeath,
  planOfDeathTakenBack,
} from './deceased-patients';
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

  it('has each plan it ended tagged so, and once the death is taken back, its note says what to do, told once', () => {
    const other = { system: 'urn:x', code: 'kept' };
    const ended = planEndedForDeath({ ...plan('active'), meta: { tag: [other] } }, now)!;
    expect(isEndedForDeath(ended)).toBe(true);
    expect(ended.meta?.tag?.map((t) => t.code)).toEqual(['kept', 'ended-for-death']);

    const later = new Date('2027-01-06T00:00:00Z');
    const corrected = planOfDeathTakenBack(ended, later)!;
    expect(corrected.status).toBe('revoked');
    expect(corrected.meta?.tag?.map((t) => t.code)).toEqual(['kept', 'death-record-corrected']);
    expect(corrected.note?.at(-1)).toEqual({ time: later.toISOString(), text: DEATH_RECORD_CORRECTED });
    expect(DEATH_RECORD_CORRECTED).toMatch(/stays ended.*apply the protocol again/);
    expect(isEndedForDeath(corrected)).toBe(false);
    expect(planOfDeathTakenBack(corrected, later)).toBeUndefined();
    // A plan stopped for anything else is not this rule's.
    expect(planOfDeathTakenBack(plan('revoked'), later)).toBeUndefined();
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
