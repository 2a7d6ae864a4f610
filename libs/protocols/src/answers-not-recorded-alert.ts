import type { Communication, Patient, QuestionnaireResponse, Reference, Task } from '@medplum/fhirtypes';
import {
  alertCommunication,
  howToFindThePatient,
  namesNoPatient,
  onChannel,
  type AlertSent,
  type ClinicAlertChannel,
  type ClinicAlertContext,
  type ClinicAlertMessage,
} from './clinic-alert';
import { clinicDateTime, clinicDay } from './clinic-time';

/**
 * A patient's answers to a post-infusion check that this service has kept failing to record: answers a portal wrote
 * without the Task (their QuestionnaireResponse), or a check the EHR completed with them (its Task). Until they are
 * recorded, the effects they report are put to no clinician and their scores time nothing; the check itself may look
 * done in the EHR, so nothing else shows it. The clinic is told once the job has failed for FOLLOW_UP_FAILING_ALERT_MS,
 * and again once it has run (since session 61).
 */
export interface AnswersNotRecordedAlert {
  /** `QuestionnaireResponse/<id>` or `Task/<id>`. */
  about: string;
  answers?: QuestionnaireResponse | Task;
  failingSince: number;
}

/** How recording them ran in the end: recorded, or not a check's answers here (they matched no open check). */
export type AnswersRan = { recorded: true } | { recorded: false };

/** One alert per answers (or check) and channel. */
export function answersNotRecordedAlertKey(alert: { about: string }, channel: ClinicAlertChannel = 'email'): string {
  return onChannel(`answers-not-recorded:${alert.about}`, channel);
}

/** The key of the notice that they have been looked at again, beside the alert's. */
export function answersRecordedNoticeKey(alert: { about: string }, channel: ClinicAlertChannel = 'email'): string {
  return onChannel(`resolved:${answersNotRecordedAlertKey(alert, 'email')}`, channel);
}

/** What the clinic is told: when they answered, since when recording fails, what that leaves unseen. No patient by email. */
export function answersNotRecordedAlertMessage(
  alert: AnswersNotRecordedAlert,
  { worklistUrl, channel, zone }: ClinicAlertContext = {},
): ClinicAlertMessage {
  const day = clinicDay(answeredAt(alert.answers), zone);
  return {
    subject: "Ketamine care plans: a patient's post-infusion check answers could not be recorded yet",
    text: [
      `A patient's answers to their post-infusion check${day ? ` (${day})` : ''} are not recorded here yet: recording them has failed since ${clinicDateTime(alert.failingSince, zone)}. Until they are, an effect they report is put to no clinician for review, and their scores time nothing. An operator sees why among the service's dead letters.`,
      'Read their answers in the EHR now. The service keeps trying by itself and tells you once they are recorded.',
      ...howToFindThePatient(channel, worklistUrl),
    ].join('\n\n'),
  };
}

/** What the clinic is told once recording them has run. No patient by email. */
export function answersRecordedNoticeMessage(
  alert: Pick<AnswersNotRecordedAlert, 'answers'>,
  ran: AnswersRan,
  { channel, zone }: ClinicAlertContext = {},
): ClinicAlertMessage {
  const day = clinicDay(answeredAt(alert.answers), zone);
  const answers = `the post-infusion check answers${day ? ` of ${day}` : ''} you were told of`;
  return {
    subject: "Ketamine care plans: dealt with: a patient's post-infusion check answers could not be recorded",
    text: [
      ran.recorded
        ? `${capitalised(answers)} are recorded now: an effect they report is on the worklist for review.`
        : `${capitalised(answers)} were looked at again, and answer no open check here: read them in the EHR.`,
      'Nothing more is asked of you by that alert.',
      ...namesNoPatient(channel),
    ].join('\n\n'),
  };
}

/** The record that the clinic was told (or of the notice, `resolved`): about the answers, its subject the patient. */
export function answersNotRecordedAlertRecord(
  alert: Pick<AnswersNotRecordedAlert, 'about' | 'answers'>,
  message: ClinicAlertMessage,
  sent: AlertSent,
): Communication {
  const answers = alert.answers;
  return alertCommunication(message, sent, {
    key: answersNotRecordedAlertKey(alert, sent.channel ?? 'email'),
    subject: patientOf(answers),
    about: [{ reference: alert.about }],
  });
}

/** Whose answers they are: the response's subject, or the check Task's `for`, when a Patient. */
function patientOf(answers: QuestionnaireResponse | Task | undefined): Reference<Patient> | undefined {
  const ref = answers?.resourceType === 'Task' ? answers.for : answers?.subject;
  return ref?.reference?.startsWith('Patient/') ? (ref as Reference<Patient>) : undefined;
}

/** When they answered: the response's `authored`, or when the EHR closed the check. */
function answeredAt(answers: QuestionnaireResponse | Task | undefined): string | undefined {
  if (!answers) return undefined;
  return answers.resourceType === 'Task'
    ? (answers.executionPeriod?.end ?? answers.lastModified ?? answers.meta?.lastUpdated)
    : (answers.authored ?? answers.meta?.lastUpdated);
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
