import type { CarePlan, Communication } from '@medplum/fhirtypes';
import {
  alertCommunication,
  howToFindThePatient,
  onChannel,
  type AlertSent,
  type ClinicAlertChannel,
  type ClinicAlertContext,
  type ClinicAlertMessage,
} from './clinic-alert';
import { clinicDay } from './clinic-time';

/**
 * A care plan this service ended because the EHR recorded its patient as deceased, whose record no longer says so (a
 * death recorded in error, taken back): the plan stays ended, and the clinic is told, since only a clinician knows
 * whether the patient's care goes on (since session 46; before, nobody was told, and the patient's care stopped).
 */
export interface DeathTakenBackAlert {
  carePlan: CarePlan & { id: string };
  /** When the plan was ended for the death (its note's time). */
  endedAt?: string;
}

/** One alert per plan and channel. */
export function deathTakenBackAlertKey(
  alert: Pick<DeathTakenBackAlert, 'carePlan'>,
  channel: ClinicAlertChannel = 'email',
): string {
  return onChannel(`death-taken-back:CarePlan/${alert.carePlan.id}`, channel);
}

/** What the clinic is told: which plan ended and when, that it stays ended, what to do. By email, no patient. */
export function deathTakenBackAlertMessage(
  { carePlan, endedAt }: DeathTakenBackAlert,
  { worklistUrl, channel, zone }: ClinicAlertContext = {},
): ClinicAlertMessage {
  const plan = carePlan.title ?? 'ketamine care plan';
  const ended = clinicDay(endedAt, zone);
  return {
    subject: "Ketamine care plans: a patient's death record was taken back; their care plan stays ended, to review",
    text: [
      `A patient's ${plan} was ended${ended ? ` on ${ended}` : ''} because the EHR recorded them as deceased: its sessions were withdrawn, their orders cancelled and their reminders revoked.`,
      'The EHR no longer records them as deceased. The plan stays ended (its note says so): if their care goes on, apply the protocol again for them.',
      ...howToFindThePatient(channel, worklistUrl),
    ].join('\n\n'),
  };
}

/** The record that the clinic was told (alertCommunication, about the plan, its subject the patient). */
export function deathTakenBackAlertRecord(
  alert: Pick<DeathTakenBackAlert, 'carePlan'>,
  message: ClinicAlertMessage,
  sent: AlertSent,
): Communication {
  return alertCommunication(message, sent, {
    key: deathTakenBackAlertKey(alert, sent.channel ?? 'email'),
    subject: alert.carePlan.subject,
    about: [{ reference: `CarePlan/${alert.carePlan.id}` }],
  });
}
