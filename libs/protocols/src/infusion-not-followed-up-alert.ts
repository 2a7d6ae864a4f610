import type { CarePlan, Communication, Procedure } from '@medplum/fhirtypes';
import {
  alertCommunication,
  howToFindThePatient,
  infusionDay,
  namesNoPatient,
  onChannel,
  type AlertSent,
  type ClinicAlertChannel,
  type ClinicAlertContext,
  type ClinicAlertMessage,
} from './clinic-alert';
import { clinicDateTime } from './clinic-time';

/**
 * A ketamine infusion whose follow-up (its post-infusion check, the plan's next session, the session it gave answered)
 * has kept failing: its job spent its attempts and is tried again by itself (the dead letters), but until it succeeds
 * nothing tells a clinician that the check is missing from the worklist. The clinic is told once it has failed for
 * FOLLOW_UP_FAILING_ALERT_MS, and told again when it has run (since session 61; before, only an operator's dead-letter
 * view and a metric said so, for up to a week of revivals).
 */
export interface InfusionNotFollowedUpAlert {
  procedure: Procedure & { id: string };
  /** The plan it was charted under, when it names one the FHIR server still has (its title in the message). */
  carePlan?: CarePlan & { id: string };
  /** When its follow-up first failed for good (epoch ms). */
  failingSince: number;
}

/** How the follow-up ran in the end: planned (`created`), or judged to plan nothing (why, in words). */
export type FollowUpRan = { planned: true } | { planned: false; why: string };

/** One alert per infusion and channel. */
export function infusionNotFollowedUpAlertKey(
  alert: { procedure: { id?: string } },
  channel: ClinicAlertChannel = 'email',
): string {
  return onChannel(`infusion-not-followed-up:Procedure/${alert.procedure.id}`, channel);
}

/** The key of the notice that its follow-up has run, beside the alert's (`resolved:infusion-not-followed-up:...`). */
export function infusionFollowedUpNoticeKey(
  alert: { procedure: { id?: string } },
  channel: ClinicAlertChannel = 'email',
): string {
  return onChannel(`resolved:${infusionNotFollowedUpAlertKey(alert, 'email')}`, channel);
}

/** What the clinic is told: which infusion, since when, what is missing, what to do. By email, no patient. */
export function infusionNotFollowedUpAlertMessage(
  { procedure, carePlan, failingSince }: InfusionNotFollowedUpAlert,
  { worklistUrl, channel, zone }: ClinicAlertContext = {},
): ClinicAlertMessage {
  const day = infusionDay(procedure, zone);
  const plan = carePlan?.title ?? 'ketamine care plan';
  return {
    subject: "Ketamine care plans: an infusion's post-infusion check could not be planned yet",
    text: [
      `A ketamine infusion${day ? ` on ${day}` : ''} under a patient's ${plan} has no post-infusion check on the worklist: planning what follows it (the check, the plan's next session) has failed since ${clinicDateTime(failingSince, zone)}. An operator sees why among the service's dead letters.`,
      'The service keeps trying by itself and tells you once it has planned them. If the check cannot wait, call the patient, and record what they tell you once the check is on the worklist.',
      ...howToFindThePatient(channel, worklistUrl),
    ].join('\n\n'),
  };
}

/** What the clinic is told once the follow-up has run: planned, or nothing to plan (why). By email, no patient. */
export function infusionFollowedUpNoticeMessage(
  { procedure }: { procedure: Partial<Procedure> },
  ran: FollowUpRan,
  { worklistUrl, channel, zone }: ClinicAlertContext = {},
): ClinicAlertMessage {
  const day = infusionDay(procedure, zone);
  const infusion = `the ketamine infusion${day ? ` on ${day}` : ''}`;
  return {
    subject: "Ketamine care plans: dealt with: an infusion's post-infusion check could not be planned",
    text: [
      ran.planned
        ? `What follows ${infusion} you were told of is planned now: its post-infusion check is on the worklist${worklistUrl ? ` (${worklistUrl})` : ''}.`
        : `The follow-up of ${infusion} you were told of has run, and planned nothing: ${ran.why}.`,
      'Nothing more is asked of you by that alert.',
      ...namesNoPatient(channel),
    ].join('\n\n'),
  };
}

/**
 * The record that the clinic was told (alertCommunication, about the infusion and its plan, its subject the patient),
 * or of the notice that its follow-up has run (`resolved`).
 */
export function infusionNotFollowedUpAlertRecord(
  alert: { procedure: Partial<Procedure>; carePlan?: { id?: string } },
  message: ClinicAlertMessage,
  sent: AlertSent,
): Communication {
  return alertCommunication(message, sent, {
    key: infusionNotFollowedUpAlertKey(alert, sent.channel ?? 'email'),
    subject: alert.procedure.subject,
    about: [
      { reference: `Procedure/${alert.procedure.id}` },
      ...(alert.carePlan ? [{ reference: `CarePlan/${alert.carePlan.id}` }] : []),
    ],
  });
}
