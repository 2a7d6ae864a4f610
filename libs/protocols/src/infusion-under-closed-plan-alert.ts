import type { CarePlan, Communication, Procedure } from '@medplum/fhirtypes';
import {
  alertCommunication,
  howToFindThePatient,
  infusionDay,
  onChannel,
  type AlertSent,
  type ClinicAlertChannel,
  type ClinicAlertContext,
  type ClinicAlertMessage,
} from './clinic-alert';

/**
 * A ketamine infusion charted under a care plan the EHR recorded in error: this service plans nothing under it, so the
 * infusion has no post-infusion check, and the clinic is told, once per infusion and channel (since session 51; before,
 * only a log line said so). Under a plan the EHR stopped or completed the infusion has its check since session 52, and
 * this alert is not sent.
 */
export interface InfusionUnderClosedPlanAlert {
  procedure: Procedure & { id: string };
  carePlan: CarePlan & { id: string };
  /** Why the plan takes no follow-up, in words ("its care plan was stopped (revoked)"). */
  why: string;
}

/** One alert per infusion and channel. */
export function infusionUnderClosedPlanAlertKey(
  alert: Pick<InfusionUnderClosedPlanAlert, 'procedure'>,
  channel: ClinicAlertChannel = 'email',
): string {
  return onChannel(`infusion-under-closed-plan:Procedure/${alert.procedure.id}`, channel);
}

/** What the clinic is told: when the infusion was, why nothing was planned for it, what to do. By email, no patient. */
export function infusionUnderClosedPlanAlertMessage(
  { procedure, carePlan, why }: InfusionUnderClosedPlanAlert,
  { worklistUrl, channel, zone }: ClinicAlertContext = {},
): ClinicAlertMessage {
  const plan = carePlan.title ?? 'ketamine care plan';
  const day = infusionDay(procedure, zone);
  return {
    subject:
      'Ketamine care plans: an infusion charted under a care plan recorded in error; no post-infusion check planned',
    text: [
      `A ketamine infusion${day ? ` on ${day}` : ''} was charted under a patient's ${plan}, but ${why}: nothing is planned under a plan recorded in error, so no post-infusion check was proposed for this infusion.`,
      "If the infusion belongs to another of the patient's care plans, chart it under that one (its check is then proposed); otherwise plan the check in the EHR, or apply the protocol again for them.",
      ...howToFindThePatient(channel, worklistUrl),
    ].join('\n\n'),
  };
}

/** The record that the clinic was told (alertCommunication, about the infusion and its plan, its subject the patient). */
export function infusionUnderClosedPlanAlertRecord(
  alert: Pick<InfusionUnderClosedPlanAlert, 'procedure' | 'carePlan'>,
  message: ClinicAlertMessage,
  sent: AlertSent,
): Communication {
  return alertCommunication(message, sent, {
    key: infusionUnderClosedPlanAlertKey(alert, sent.channel ?? 'email'),
    subject: alert.procedure.subject,
    about: [{ reference: `Procedure/${alert.procedure.id}` }, { reference: `CarePlan/${alert.carePlan.id}` }],
  });
}
