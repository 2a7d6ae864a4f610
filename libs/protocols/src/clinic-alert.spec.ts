import type { DetectedIssue } from '@medplum/fhirtypes';
import { clinicAlertKindOf, clinicAlertMessage, heldOrdersOf } from './clinic-alert';
import { unreadCheckIssue } from '../../../test/fixtures/plans';
import { REPORTED_EFFECT_KEY_SYSTEM } from './reported-effects';
import { infusionInErrorIssue } from './infusion-in-error';

const pregnancy = (implicated: string[], extra: Partial<DetectedIssue> = {}): DetectedIssue => ({
  resourceType: 'DetectedIssue',
  id: 'issue-1',
  status: 'final',
  code: { coding: [{ code: 'pregnancy', display: 'Pregnancy' }], text: 'Pregnancy on record' },
  identifiedDateTime: '2026-12-02T09:30:00Z',
  implicated: implicated.map((reference) => ({ reference })),
  ...extra,
});

const hallucinations: DetectedIssue = {
  resourceType: 'DetectedIssue',
  id: 'issue-2',
  status: 'preliminary',
  identifier: [{ system: REPORTED_EFFECT_KEY_SYSTEM, value: 'Task/check-1:effect-hallucinations' }],
  code: { coding: [{ code: 'effect-hallucinations', display: 'Hallucinations' }] },
  identifiedDateTime: '2026-12-01T10:00:00Z',
  implicated: [{ reference: 'CarePlan/plan-1' }],
};

describe('which issues the clinic is emailed of', () => {
  it('an unreviewed effect, and a contraindication holding approved orders', () => {
    expect(clinicAlertKindOf(hallucinations)).toBe('effect-reported');
    expect(clinicAlertKindOf(pregnancy(['CarePlan/plan-1', 'MedicationRequest/order-1', 'Task/task-1']))).toBe(
      'orders-held',
    );
  });

  it('not a contraindication that holds nothing (Tasks awaiting approval: the approving clinician sees it)', () => {
    expect(clinicAlertKindOf(pregnancy(['CarePlan/plan-1']))).toBeUndefined();
    // A Task alone is not an order held.
    expect(clinicAlertKindOf(pregnancy(['CarePlan/plan-1', 'Task/task-1']))).toBeUndefined();
  });

  it('not an issue a clinician overrode or that was withdrawn, nor one not stored yet', () => {
    const held = ['CarePlan/plan-1', 'MedicationRequest/order-1'];
    expect(clinicAlertKindOf(pregnancy(held, { mitigation: [{ action: { text: 'Overridden' } }] }))).toBeUndefined();
    expect(clinicAlertKindOf(pregnancy(held, { status: 'entered-in-error' }))).toBeUndefined();
    expect(clinicAlertKindOf(pregnancy(held, { id: undefined }))).toBeUndefined();
  });

  it('the orders held are the MedicationRequests and ServiceRequests it implicates', () => {
    expect(
      heldOrdersOf(
        pregnancy(['CarePlan/p', 'MedicationRequest/m', 'ServiceRequest/s', 'Task/t', 'CommunicationRequest/c']),
      ),
    ).toEqual(['MedicationRequest/m', 'ServiceRequest/s']);
  });
});

describe('what the clinic is emailed of a hold', () => {
  it('what was found and when, what is held, when the session is due, where to review: no patient', () => {
    const message = clinicAlertMessage(pregnancy(['CarePlan/plan-1', 'MedicationRequest/order-1', 'Task/task-1']), {
      worklistUrl: 'https://careplans.clinic.test/ui',
      heldDueFrom: '2026-12-04T08:00:00Z',
    });
    expect(message.subject).toBe(
      'Ketamine care plans: an approved infusion is on hold (pregnancy on record), to review',
    );
    expect(message.text).toContain(
      "A contraindication was found in a patient's record after their ketamine infusion was approved: Pregnancy on record (found 2026-12-02).",
    );
    expect(message.text).toContain('Their approved order is on hold, with the Task, so nothing is to be given');
    expect(message.text).toContain('The held session is due from 2026-12-04.');
    expect(message.text).toContain('https://careplans.clinic.test/ui');
    expect(message.text).not.toMatch(/plan-1|order-1|task-1/);
  });

  it("names the clinic's days (CLINIC_TIME_ZONE): found late on the 1st in New York is the 1st, not UTC's 2nd", () => {
    const message = clinicAlertMessage(
      pregnancy(['CarePlan/plan-1', 'MedicationRequest/order-1'], { identifiedDateTime: '2026-12-02T03:30:00Z' }),
      { heldDueFrom: '2026-12-05T04:00:00Z', zone: 'America/New_York' },
    );
    expect(message.text).toContain('Pregnancy on record (found 2026-12-01).');
    expect(message.text).toContain('The held session is due from 2026-12-04.');
  });

  it('two orders held, no due date known', () => {
    const message = clinicAlertMessage(
      pregnancy(['CarePlan/plan-1', 'MedicationRequest/order-1', 'MedicationRequest/order-2']),
    );
    expect(message.text).toContain('2 of their approved orders are on hold, with the Tasks');
    expect(message.text).toContain('releases them');
    expect(message.text).not.toContain('due from');
  });

  it('an effect reported keeps its own wording', () => {
    expect(clinicAlertMessage(hallucinations).subject).toBe(
      'Ketamine care plans: hallucinations reported after an infusion, to review',
    );
  });

  it('an infusion recorded in error holding an approved order: told in its own words, no patient', () => {
    const issue = {
      ...infusionInErrorIssue({
        procedure: { resourceType: 'Procedure', id: 'p1', status: 'entered-in-error', subject: {} },
        carePlan: 'CarePlan/plan-1',
        patient: { reference: 'Patient/p1' },
        planned: [{ resourceType: 'Task', id: 'booster-1', status: 'ready', intent: 'plan' }],
        answered: [],
        identified: '2026-12-03T08:00:00Z',
      })!,
      id: 'issue-4',
    };
    issue.implicated!.push({ reference: 'MedicationRequest/order-1' });
    expect(clinicAlertKindOf(issue)).toBe('orders-held');
    const message = clinicAlertMessage(issue);
    expect(message.subject).toBe(
      'Ketamine care plans: an approved infusion is on hold (an infusion was recorded in error), to review',
    );
    expect(message.text).toMatch(
      /^An infusion on a patient's ketamine care plan was recorded in error after its follow-ups were planned \(found 2026-12-03\)/,
    );
    // What releases it, as the held order says (before session 49 the alert did not name planning again without it).
    expect(message.text).toContain(
      'A clinician planning again without the infusion, or putting the plan right and overriding with a reason, releases it.',
    );
    expect(message.text).not.toMatch(/Patient\/p1/);
  });

  it('a check whose answers could not be read: told as such, not as an effect the patient reported', () => {
    const unread = unreadCheckIssue('issue-3', '2026-12-03T08:00:00Z');
    expect(clinicAlertKindOf(unread)).toBe('effect-reported');
    const message = clinicAlertMessage(unread, { worklistUrl: 'https://clinic.example/ui' });
    expect(message.subject).toBe("Ketamine care plans: a post-infusion check's answers could not be read, to review");
    expect(message.text).toMatch(/^A patient's post-infusion check was done in the EHR \(recorded here 2026-12-03\)/);
    expect(message.text).toContain('"Cannot be approved until a clinician reads the check\'s answers"');
    expect(message.text).not.toMatch(/Patient\/p1|reported/);
  });
});
