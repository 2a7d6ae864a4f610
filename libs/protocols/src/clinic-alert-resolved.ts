import type { DetectedIssue } from '@medplum/fhirtypes';
import { alertKindOf, onChannel, type ClinicAlertChannel, type ClinicAlertMessage } from './clinic-alert';
import { clinicDay } from './clinic-time';
import { contraindicationState } from './contraindication-state';
import { isNotLinkedResolvedByService } from './infusion-not-linked';
import { isFoundAgain, isProtocolNotFound } from './protocol-not-found';
import { isUnreadAnswers } from './reported-effects';

/**
 * The clinic told that an issue it was alerted to is dealt with: reviewed (a clinician's override, here or in the EHR)
 * or withdrawn. Whoever was told of it by email or in the EHR's inbox is told, the same way, once: so the on-call
 * clinician does not call a patient someone already called. Sent only where the alert went.
 */

/** How long after an issue was resolved its notice may still go (a lost job's, by the 15-minute sweep): a day. */
export const RESOLVED_NOTICE_WITHIN_MS = 24 * 60 * 60 * 1000;

/** When an issue was resolved: its last override's date, else (withdrawn) when it was last changed. */
export function resolvedAt(issue: DetectedIssue): string | undefined {
  if (contraindicationState(issue) === 'unresolved') return undefined;
  const overridden = (issue.mitigation ?? []).map((m) => m.date).filter((d): d is string => Boolean(d));
  return overridden.sort().at(-1) ?? issue.meta?.lastUpdated;
}

/** An issue resolved lately (RESOLVED_NOTICE_WITHIN_MS), whose alert, if one went, is followed by a notice. */
export function mayNeedResolvedNotice(issue: DetectedIssue, now: Date): issue is DetectedIssue & { id: string } {
  const at = Date.parse(resolvedAt(issue) ?? '');
  return Boolean(issue.id) && at > now.getTime() - RESOLVED_NOTICE_WITHIN_MS;
}

/**
 * Of the kinds the clinic is alerted to (clinicAlertKindOf, once resolved): an effect reported at a check (or answers
 * not read), or a contraindication that held approved orders. What the sweep looks at again for notices.
 */
export function wasAlertable(issue: DetectedIssue): boolean {
  return alertKindOf(issue) !== undefined;
}

/** The key of the notice, per issue and channel, beside the alert's (`resolved:DetectedIssue/<id>`). */
export function resolvedNoticeKey(issue: { id?: string }, channel: ClinicAlertChannel = 'email'): string {
  return onChannel(`resolved:DetectedIssue/${issue.id}`, channel);
}

/**
 * What the clinic is told: what the alert was about, that it was reviewed or withdrawn and when. By email no patient
 * and no clinician's words (they may name the patient); in the EHR's inbox, the message being the patient's, what was
 * decided.
 */
export function resolvedNoticeMessage(
  issue: DetectedIssue,
  context: { channel?: ClinicAlertChannel; worklistUrl?: string; zone?: string } = {},
): ClinicAlertMessage {
  const what = alertedAbout(issue);
  const day = clinicDay(resolvedAt(issue), context.zone);
  const withdrawn = contraindicationState(issue) === 'withdrawn';
  // Resolved by the service itself: nobody reviewed it, its protocol was posted again (or the infusion linked since).
  const foundAgain = !withdrawn && isFoundAgain(issue);
  const how = withdrawn ? 'withdrawn' : foundAgain || isNotLinkedResolvedByService(issue) ? 'resolved' : 'reviewed';
  const decided = withdrawn ? undefined : issue.mitigation?.at(-1)?.action?.text;
  return {
    subject: `Ketamine care plans: ${how}: ${what}`,
    text: [
      `The alert you were sent about ${what} is dealt with: it was ${how}${day ? ` on ${day}` : ''}${foundAgain ? ', its protocol being found again (the held orders are released)' : ''}. Nothing more is asked of you by that alert.`,
      ...(context.channel === 'inbox' && decided ? [`What was decided: ${decided}`] : []),
      context.worklistUrl
        ? `The patient's plan is on the worklist: ${context.worklistUrl}.`
        : "The patient's plan is on the clinician worklist.",
      ...(context.channel === 'inbox' ? [] : ['This email names no patient: the worklist does, once you sign in.']),
    ].join('\n\n'),
  };
}

/** What the alert was about, in the words its subject used. */
function alertedAbout(issue: DetectedIssue): string {
  if (isUnreadAnswers(issue)) return "a post-infusion check's answers that could not be read";
  if (isProtocolNotFound(issue)) return "an approved infusion held (its care plan's protocol not found)";
  const kind = alertKindOf(issue);
  if (kind === 'infusion-not-linked') return 'an infusion charted without its care plan';
  const name = (issue.code?.coding?.[0]?.display ?? issue.code?.text ?? 'an issue').replace(/\.$/, '').toLowerCase();
  if (kind === 'effect-reported') return `${name} reported after an infusion`;
  return kind === 'orders-held' ? `an approved infusion held (${name})` : name;
}
