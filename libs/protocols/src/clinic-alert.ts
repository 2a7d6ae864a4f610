import type { Communication, DetectedIssue } from '@medplum/fhirtypes';
import { CANONICAL_BASE, SERVICE_CODE_SYSTEM } from './canonical';
import { contraindicationState } from './contraindication-state';
import { isReportedEffect } from './reported-effects';

/** Identifies the record that the clinic was told of an issue: `DetectedIssue/<id>`, one per issue. */
export const CLINIC_ALERT_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/clinic-alert-key`;

/** The issues the clinic is told of: effects a patient reported at a check, not reviewed yet. */
export function needsClinicAlert(issue: DetectedIssue): issue is DetectedIssue & { id: string } {
  return Boolean(issue.id) && isReportedEffect(issue) && contraindicationState(issue) === 'unresolved';
}

export function clinicAlertKey(issue: { id?: string }): string {
  return `DetectedIssue/${issue.id}`;
}

export interface ClinicAlertMessage {
  subject: string;
  text: string;
}

/**
 * What the clinic is emailed: what was reported and when, what waits, and where to review it. No patient's name,
 * identifier or record reference (email leaves the clinic's systems): the worklist, behind sign-in, names them.
 */
export function clinicAlertMessage(issue: DetectedIssue, worklistUrl?: string): ClinicAlertMessage {
  const effect = issue.code?.coding?.[0]?.display ?? issue.code?.text ?? 'An effect';
  const day = issue.identifiedDateTime?.slice(0, 10);
  return {
    subject: `Ketamine care plans: ${effect.toLowerCase()} reported after an infusion, to review`,
    text: [
      `A patient reported ${effect.toLowerCase()} at their post-infusion check${day ? ` of ${day}` : ''}.`,
      'Their next ketamine infusions are not approved, and their approved orders are held, until a clinician reviews it and records what was decided.',
      worklistUrl
        ? `Review it on the worklist: ${worklistUrl} (the patient's row says "Cannot be approved until a clinician reviews the effect reported").`
        : 'Review it on the clinician worklist.',
      'This email names no patient: the worklist does, once you sign in.',
    ].join('\n\n'),
  };
}

/**
 * The record that the clinic was told (a Communication about the issue and its plan, by email, keyed by the issue), as
 * an EHR reads a message sent: who it was sent to, when, and what it said.
 */
export function clinicAlertRecord(
  issue: DetectedIssue & { id: string },
  message: ClinicAlertMessage,
  sent: { to: string[]; now: Date },
): Communication {
  return {
    resourceType: 'Communication',
    identifier: [{ system: CLINIC_ALERT_KEY_SYSTEM, value: clinicAlertKey(issue) }],
    status: 'completed',
    category: [{ coding: [{ system: SERVICE_CODE_SYSTEM, code: 'clinic-alert', display: 'Alert to the clinic' }] }],
    priority: 'urgent',
    medium: [
      {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationMode', code: 'EMAILWRIT', display: 'email' },
        ],
      },
    ],
    subject: issue.patient,
    about: [{ reference: clinicAlertKey(issue) }, ...(issue.implicated ?? [])],
    sent: sent.now.toISOString(),
    recipient: sent.to.map((address) => ({ display: address })),
    topic: { text: message.subject },
    payload: [{ contentString: message.text }],
  };
}
