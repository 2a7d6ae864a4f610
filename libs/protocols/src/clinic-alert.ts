import type { Communication, DetectedIssue, Procedure, Reference } from '@medplum/fhirtypes';
import { CANONICAL_BASE, SERVICE_CODE_SYSTEM } from './canonical';
import { clinicDay } from './clinic-time';
import { howReleased } from './hold-release';
import { contraindicationState } from './contraindication-state';
import { isInfusionInError } from './infusion-in-error';
import { isInfusionNotLinked } from './infusion-not-linked';
import { isProtocolNotFound } from './protocol-not-found';
import { isReportedEffect, isUnreadAnswers } from './reported-effects';

/**
 * Identifies the record that the clinic was told of an issue, one per issue and channel: `DetectedIssue/<id>` by email,
 * `inbox:DetectedIssue/<id>` in the EHR's inbox.
 */
export const CLINIC_ALERT_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/clinic-alert-key`;

/**
 * Why the clinic is told of an issue, if it is:
 * - `effect-reported`: an effect a patient reported at a check, not reviewed yet;
 * - `orders-held`: a contraindication found after approval, which holds approved orders (the ketamine order, with its
 *   Task). Nobody was at the page when the sweep or an infusion event found it, and the session may be tomorrow.
 * - `infusion-not-linked`: an infusion charted naming no care plan that nothing ties to one, for a patient on a plan
 *   that follows up infusions of its code: not followed up (no post-infusion check, no next session planned) until a
 *   clinician links it, whatever it holds.
 * A contraindication found while Tasks only await approval is not emailed: the approving clinician sees it.
 */
export type ClinicAlertKind = 'effect-reported' | 'orders-held' | 'infusion-not-linked';

export function clinicAlertKindOf(issue: DetectedIssue): ClinicAlertKind | undefined {
  if (!issue.id || contraindicationState(issue) !== 'unresolved') return undefined;
  return alertKindOf(issue);
}

/** The kind of alert an issue is, whatever its state now (a resolved one was alerted as this kind, if at all). */
export function alertKindOf(issue: DetectedIssue): ClinicAlertKind | undefined {
  if (isReportedEffect(issue)) return 'effect-reported';
  if (isInfusionNotLinked(issue)) return 'infusion-not-linked';
  return heldOrdersOf(issue).length ? 'orders-held' : undefined;
}

export function needsClinicAlert(issue: DetectedIssue): issue is DetectedIssue & { id: string } {
  return clinicAlertKindOf(issue) !== undefined;
}

/** The orders an issue holds: a hold adds them, and the Tasks they answer, to the issue's `implicated`. */
export function heldOrdersOf(issue: DetectedIssue): string[] {
  return (issue.implicated ?? [])
    .map((r) => r.reference ?? '')
    .filter((r) => /^(MedicationRequest|ServiceRequest)\/[^/]+$/.test(r));
}

/** The held Tasks an `orders-held` alert reads the sessions' due dates from. */
export function heldTasksOf(issue: DetectedIssue): string[] {
  return (issue.implicated ?? []).map((r) => r.reference ?? '').filter((r) => /^Task\/[^/]+$/.test(r));
}

/**
 * How the clinic is told: `email` (CLINIC_ALERT_EMAIL, sent by SMTP, then recorded), `inbox` (CLINIC_ALERT_RECIPIENTS:
 * the Communication to them, written to the FHIR server, is the message). Each is told once, on its own.
 */
export type ClinicAlertChannel = 'email' | 'inbox';

/** An alert's key on a channel: the email's as given, the EHR inbox's prefixed `inbox:` (each is told once). */
export function onChannel(key: string, channel: ClinicAlertChannel = 'email'): string {
  return channel === 'inbox' ? `inbox:${key}` : key;
}

export function clinicAlertKey(issue: { id?: string }, channel: ClinicAlertChannel = 'email'): string {
  return onChannel(`DetectedIssue/${issue.id}`, channel);
}

export interface ClinicAlertMessage {
  subject: string;
  text: string;
}

/** What the clinic is emailed about, besides the issue: where to review it, and when the held sessions are due. */
export interface ClinicAlertContext {
  worklistUrl?: string;
  /** The earliest start of the held Tasks' due windows (`restriction.period.start`), for `orders-held`. */
  heldDueFrom?: string;
  /** Email (the default) says it names no patient; in the EHR's inbox the message is the patient's (its subject). */
  channel?: ClinicAlertChannel;
  /** The clinic's time zone: the days the message names are its own. UTC unless given. */
  zone?: string;
}

/**
 * What the clinic is emailed: what was found or reported and when, what waits, and where to review it. No patient's
 * name, identifier or record reference (email leaves the clinic's systems): the worklist, behind sign-in, names them.
 */
export function clinicAlertMessage(issue: DetectedIssue, context: ClinicAlertContext = {}): ClinicAlertMessage {
  const kind = clinicAlertKindOf(issue);
  if (kind === 'orders-held') return heldOrdersMessage(issue, context);
  if (kind === 'infusion-not-linked') return infusionNotLinkedMessage(issue, context);
  return isUnreadAnswers(issue) ? unreadAnswersMessage(issue, context) : reportedEffectMessage(issue, context);
}

function infusionNotLinkedMessage(
  issue: DetectedIssue,
  { worklistUrl, channel, zone }: ClinicAlertContext,
): ClinicAlertMessage {
  const day = clinicDay(issue.identifiedDateTime, zone);
  const orders = heldOrdersOf(issue).length;
  return {
    subject: 'Ketamine care plans: an infusion was charted without its care plan, to link',
    text: [
      `An infusion was charted in the EHR${day ? ` (heard here ${day})` : ''} for a patient on a ketamine care plan, naming no care plan, and nothing ties it to one (no protocol named, no pump record of the plan's order).`,
      "If it was one of the plan's ketamine sessions, its post-infusion check and next session are not planned until it is linked: link it to its care plan on the worklist (or in the EHR). If it was not, record that it was not.",
      `Until then nothing more under the patient's plan is approved${orders ? `, and ${orders === 1 ? 'its approved order is' : `${orders} of its approved orders are`} on hold` : ', and any approved order under it is held'}.`,
      reviewOn(worklistUrl, 'Cannot be approved until the infusion charted without its care plan is linked'),
      ...namesNoPatient(channel),
    ].join('\n\n'),
  };
}

function unreadAnswersMessage(
  issue: DetectedIssue,
  { worklistUrl, channel, zone }: ClinicAlertContext,
): ClinicAlertMessage {
  const day = clinicDay(issue.identifiedDateTime, zone);
  return {
    subject: "Ketamine care plans: a post-infusion check's answers could not be read, to review",
    text: [
      `A patient's post-infusion check was done in the EHR${day ? ` (recorded here ${day})` : ''}, but its answers could not be read here, so the effects it asks about were not judged.`,
      'Their next ketamine infusions are not approved, and their approved orders are held, until a clinician reads the answers in the EHR and records what was decided.',
      reviewOn(worklistUrl, "Cannot be approved until a clinician reads the check's answers"),
      ...namesNoPatient(channel),
    ].join('\n\n'),
  };
}

function reportedEffectMessage(
  issue: DetectedIssue,
  { worklistUrl, channel, zone }: ClinicAlertContext,
): ClinicAlertMessage {
  const effect = issue.code?.coding?.[0]?.display ?? issue.code?.text ?? 'An effect';
  const day = clinicDay(issue.identifiedDateTime, zone);
  return {
    subject: `Ketamine care plans: ${effect.toLowerCase()} reported after an infusion, to review`,
    text: [
      `A patient reported ${effect.toLowerCase()} at their post-infusion check${day ? ` of ${day}` : ''}.`,
      'Their next ketamine infusions are not approved, and their approved orders are held, until a clinician reviews it and records what was decided.',
      reviewOn(worklistUrl, 'Cannot be approved until a clinician reviews the effect reported'),
      ...namesNoPatient(channel),
    ].join('\n\n'),
  };
}

function heldOrdersMessage(
  issue: DetectedIssue,
  { worklistUrl, heldDueFrom, channel, zone }: ClinicAlertContext,
): ClinicAlertMessage {
  const day = clinicDay(issue.identifiedDateTime, zone);
  const orders = heldOrdersOf(issue).length;
  const { what, found } = whyHeld(issue, day ? ` (found ${day})` : '');
  const tasks = `Task${orders === 1 ? '' : 's'}`;
  return {
    subject: `Ketamine care plans: an approved infusion is on hold (${what}), to review`,
    text: [
      found,
      `${orders === 1 ? 'Their approved order is' : `${orders} of their approved orders are`} on hold, with the ${tasks}, so nothing is to be given until a clinician reviews it. ${howReleased(issue, orders)} A clinician may instead reject the ${tasks}.`,
      ...(heldDueFrom
        ? [`The ${orders === 1 ? 'held' : 'first held'} session is due from ${clinicDay(heldDueFrom, zone)}.`]
        : []),
      reviewOn(worklistUrl, 'Held: found after approval'),
      ...namesNoPatient(channel),
    ].join('\n\n'),
  };
}

/**
 * Why approved orders are held, in the alert's words: what (its subject) and what was found (`when`: " (found
 * <day>)"). What releases them is the held order's own words (howReleased).
 */
function whyHeld(issue: DetectedIssue, when: string): { what: string; found: string } {
  if (isProtocolNotFound(issue))
    return {
      what: "its care plan's protocol is not found",
      found: `The protocol a patient's ketamine care plan follows is not found any more${when}: neither one of this service's nor on the FHIR server, so their record cannot be checked against its contraindications.`,
    };
  if (isInfusionInError(issue))
    return {
      what: 'an infusion was recorded in error',
      found: `An infusion on a patient's ketamine care plan was recorded in error after its follow-ups were planned${when}: what it planned is timed from an infusion that did not happen, and the session it answered is marked done.`,
    };
  const name = (issue.code?.text ?? issue.code?.coding?.[0]?.display ?? 'A contraindication').replace(/\.$/, '');
  return {
    what: name.toLowerCase(),
    found: `A contraindication was found in a patient's record after their ketamine infusion was approved: ${name}${when}.`,
  };
}

export function reviewOn(worklistUrl: string | undefined, rowSays: string, list = 'worklist'): string {
  return worklistUrl
    ? `Review it on the ${list}: ${worklistUrl} (the patient's row says "${rowSays}").`
    : `Review it on the clinician ${list}.`;
}

const NO_PATIENT_NAMED = 'This email names no patient: the worklist does, once you sign in.';

/** The email's closing line, that it names no patient (the inbox's message is the patient's: none there). */
export function namesNoPatient(channel: ClinicAlertChannel | undefined): string[] {
  return channel === 'inbox' ? [] : [NO_PATIENT_NAMED];
}

/**
 * The closing lines of an alert about one patient's plan: in the EHR's inbox, that it names the patient; by email, where
 * to find them (the clinician page, or the inbox message), and that it names nobody.
 */
export function howToFindThePatient(channel: ClinicAlertChannel | undefined, worklistUrl?: string): string[] {
  return channel === 'inbox'
    ? ['This message names the patient.']
    : [
        `Find them by name on the clinician page${worklistUrl ? ` (${worklistUrl})` : ''}, or by the EHR's inbox message about it.`,
        ...namesNoPatient(channel),
      ];
}

/** The clinic's day an infusion ended (or began, or was charted at): what an alert about it names. */
export function infusionDay(procedure: Partial<Procedure>, zone: string | undefined): string | undefined {
  return clinicDay(
    procedure.performedPeriod?.end ?? procedure.performedPeriod?.start ?? procedure.performedDateTime,
    zone,
  );
}

/** How each channel's record says the message went (v3 ParticipationMode). */
const MEDIUM: Record<ClinicAlertChannel, { code: string; display: string }> = {
  email: { code: 'EMAILWRIT', display: 'email' },
  inbox: { code: 'ELECTRONIC', display: 'electronic data' },
};

/** How a message to the clinic went: by which channel, to whom, when; a notice answering an alert (`resolved`). */
export interface AlertSent {
  channel?: ClinicAlertChannel;
  to: string[];
  now: Date;
  /** A notice that what was alerted is dealt with (its key, the alert it follows), rather than the alert itself. */
  resolved?: { key: string; alert?: string };
}

/**
 * The record that the clinic was told (a Communication about the issue and its plan, keyed by the issue and the
 * channel), as an EHR reads a message sent: how, to whom, when, and what it said.
 */
export function clinicAlertRecord(
  issue: DetectedIssue & { id: string },
  message: ClinicAlertMessage,
  sent: AlertSent,
): Communication {
  return alertCommunication(message, sent, {
    key: clinicAlertKey(issue, sent.channel ?? 'email'),
    subject: issue.patient,
    about: [{ reference: `DetectedIssue/${issue.id}` }, ...(issue.implicated ?? [])],
  });
}

/**
 * A message to the clinic as its record (alerts and their notices, whatever they are about): keyed by `key`, or by the
 * notice's own key; urgent, or routine for a notice, which answers its alert (`inResponseTo`). By email, the
 * recipients are the addresses (`display`); in the inbox, the references (CLINIC_ALERT_RECIPIENTS) whose inbox shows
 * it, the patient its subject.
 */
export function alertCommunication(
  message: ClinicAlertMessage,
  sent: AlertSent,
  what: { key: string; subject?: Communication['subject']; about: Reference[] },
): Communication {
  const channel = sent.channel ?? 'email';
  return {
    resourceType: 'Communication',
    identifier: [{ system: CLINIC_ALERT_KEY_SYSTEM, value: sent.resolved?.key ?? what.key }],
    ...(sent.resolved?.alert ? { inResponseTo: [{ reference: sent.resolved.alert }] } : {}),
    status: 'completed',
    category: [{ coding: [{ system: SERVICE_CODE_SYSTEM, code: 'clinic-alert', display: 'Alert to the clinic' }] }],
    priority: sent.resolved ? 'routine' : 'urgent',
    medium: [
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationMode', ...MEDIUM[channel] }] },
    ],
    subject: what.subject,
    about: what.about,
    sent: sent.now.toISOString(),
    recipient: sent.to.map((to) => (channel === 'inbox' ? { reference: to } : { display: to })),
    topic: { text: message.subject },
    payload: [{ contentString: message.text }],
  };
}
