import type { DetectedIssue } from '@medplum/fhirtypes';
import {
  mayNeedResolvedNotice,
  resolvedAt,
  resolvedNoticeKey,
  resolvedNoticeMessage,
  wasAlertable,
} from './clinic-alert-resolved';
import { unreadCheckIssue } from '../../../test/fixtures/plans';
import { REPORTED_EFFECT_KEY_SYSTEM } from './reported-effects';

const NOW = new Date('2026-12-04T12:00:00Z');
const hallucinations = (extra: Partial<DetectedIssue> = {}): DetectedIssue => ({
  resourceType: 'DetectedIssue',
  id: 'issue-1',
  status: 'preliminary',
  identifier: [{ system: REPORTED_EFFECT_KEY_SYSTEM, value: 'Task/check-1:effect-hallucinations' }],
  code: { coding: [{ code: 'effect-hallucinations', display: 'Hallucinations' }] },
  implicated: [{ reference: 'CarePlan/plan-1' }],
  meta: { lastUpdated: '2026-12-04T11:00:00Z' },
  ...extra,
});
const reviewed = (date: string, text = 'Clinician override: called the patient, gone by the evening') =>
  hallucinations({ status: 'final', mitigation: [{ action: { text }, date }] });

describe('the notice that an alerted issue is dealt with', () => {
  it('resolved when overridden (its last override) or withdrawn (when last changed); unresolved, never', () => {
    expect(resolvedAt(hallucinations())).toBeUndefined();
    expect(resolvedAt(reviewed('2026-12-04T10:00:00Z'))).toBe('2026-12-04T10:00:00Z');
    expect(resolvedAt(hallucinations({ status: 'entered-in-error' }))).toBe('2026-12-04T11:00:00Z');
  });

  it('goes for issues resolved within a day (the sweep tries a lost one again), not older ones', () => {
    expect(mayNeedResolvedNotice(reviewed('2026-12-04T10:00:00Z'), NOW)).toBe(true);
    expect(mayNeedResolvedNotice(reviewed('2026-12-02T10:00:00Z'), NOW)).toBe(false);
    expect(mayNeedResolvedNotice(hallucinations(), NOW)).toBe(false);
    expect(resolvedNoticeKey({ id: 'issue-1' }, 'inbox')).toBe('inbox:resolved:DetectedIssue/issue-1');
  });

  it('is looked for again on the kinds the clinic is alerted to: effects, unread answers, holds of approved orders', () => {
    expect(wasAlertable(reviewed('2026-12-04T10:00:00Z'))).toBe(true);
    expect(wasAlertable(unreadCheckIssue('issue-2', '2026-12-04T09:00:00Z'))).toBe(true);
    const contraindication: DetectedIssue = {
      resourceType: 'DetectedIssue',
      status: 'final',
      implicated: [{ reference: 'CarePlan/plan-1' }],
    };
    // Found before approval, it held nothing, and was shown to the approving clinician, not sent.
    expect(wasAlertable(contraindication)).toBe(false);
    const holding = {
      ...contraindication,
      implicated: [...contraindication.implicated!, { reference: 'MedicationRequest/o1' }],
    };
    expect(wasAlertable(holding)).toBe(true);
  });

  it('says what the alert was about and when it was dealt with; what was decided only in the inbox', () => {
    const issue = reviewed('2026-12-04T10:00:00Z');
    const email = resolvedNoticeMessage(issue, { channel: 'email', worklistUrl: 'https://clinic.test/ui' });
    expect(email.subject).toBe('Ketamine care plans: reviewed: hallucinations reported after an infusion');
    expect(email.text).toMatch(
      /^The alert you were sent about hallucinations reported after an infusion is dealt with: it was reviewed on 2026-12-04\./,
    );
    expect(email.text).not.toContain('called the patient');
    expect(email.text).toContain('names no patient');
    const inbox = resolvedNoticeMessage(issue, { channel: 'inbox' });
    expect(inbox.text).toContain('What was decided: Clinician override: called the patient, gone by the evening');
    expect(resolvedNoticeMessage(hallucinations({ status: 'cancelled' as never })).subject).toBe(
      'Ketamine care plans: withdrawn: hallucinations reported after an infusion',
    );
  });

  it('a check whose answers could not be read is named as such', () => {
    const reviewedUnread = {
      ...unreadCheckIssue('issue-2', '2026-12-04T08:00:00Z'),
      status: 'final' as const,
      mitigation: [{ action: { text: 'Read in the EHR' }, date: '2026-12-04T10:00:00Z' }],
    };
    expect(resolvedNoticeMessage(reviewedUnread).subject).toBe(
      "Ketamine care plans: reviewed: a post-infusion check's answers that could not be read",
    );
  });
});
