import type { Communication, MedicationRequest, Task } from '@medplum/fhirtypes';
import { SERVICE_CODE_SYSTEM } from './canonical';
import {
  ALERT_MEDIUM,
  CLINIC_ALERT_KEY_SYSTEM,
  namesNoPatient,
  reviewOn,
  type ClinicAlertChannel,
  type ClinicAlertContext,
  type ClinicAlertMessage,
} from './clinic-alert';
import { clinicDay } from './clinic-time';

/**
 * An approved session's order whose rate differs from what its protocol proposes since the pump's record of the last
 * infusion arrived (the order's rate notice, session 39): the clinic is told, since the order is the clinician's to
 * change and the session may be given before anyone opens the to-do list (session 40).
 */
export interface RateNoticeAlert {
  order: MedicationRequest;
  /** The rate the protocol proposes from the pump's record, and the rate the order gives, both in `unit`. */
  proposed: number;
  ordered: number;
  unit: string;
  /** The session's Task: when it is due tells the clinic how soon to look. */
  task?: Task;
}

/**
 * How long after an order's rate notice was written the sweep still sends an alert its job could not (a mail server
 * down longer than the job's retries): a day, as for a resolved notice.
 */
export const RATE_NOTICE_ALERT_WITHIN_MS = 24 * 60 * 60 * 1000;

/** One alert per order, rate proposed and channel: a later record proposing another rate is told again. */
export function rateNoticeAlertKey(alert: RateNoticeAlert, channel: ClinicAlertChannel = 'email'): string {
  return `${channel === 'inbox' ? 'inbox:' : ''}rate-since-approval:MedicationRequest/${alert.order.id}:${alert.proposed}`;
}

/** What the clinic is told: the rates, when the session is due, where to change it. By email, no patient. */
export function rateNoticeAlertMessage(
  alert: RateNoticeAlert,
  { worklistUrl, channel, zone }: ClinicAlertContext = {},
): ClinicAlertMessage {
  const { proposed, ordered, unit } = alert;
  const due = clinicDay(alert.task?.restriction?.period?.start, zone);
  return {
    subject: `Ketamine care plans: an approved infusion's order gives ${ordered > proposed ? 'more' : 'less'} than its protocol now proposes, to review`,
    text: [
      "The pump's record of a patient's last ketamine infusion arrived after their next session was approved.",
      `From the rate it records, their protocol proposes ${proposed} ${unit}; the approved order gives ${ordered} ${unit}.`,
      `The order stays as approved, with a note saying so, until a clinician changes its dose${due ? `. The session is due from ${due}` : ''}.`,
      reviewOn(worklistUrl, 'Recorded at the pump after this session was approved', 'to-do list'),
      ...namesNoPatient(channel),
    ].join('\n\n'),
  };
}

/** The record that the clinic was told, as an EHR reads a message sent (clinicAlertRecord's shape, about the order). */
export function rateNoticeAlertRecord(
  alert: RateNoticeAlert,
  message: ClinicAlertMessage,
  sent: { channel: ClinicAlertChannel; to: string[]; now: Date },
): Communication {
  const { order, task } = alert;
  return {
    resourceType: 'Communication',
    identifier: [{ system: CLINIC_ALERT_KEY_SYSTEM, value: rateNoticeAlertKey(alert, sent.channel) }],
    status: 'completed',
    category: [{ coding: [{ system: SERVICE_CODE_SYSTEM, code: 'clinic-alert', display: 'Alert to the clinic' }] }],
    priority: 'urgent',
    medium: [
      {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationMode', ...ALERT_MEDIUM[sent.channel] },
        ],
      },
    ],
    subject: order.subject,
    about: [{ reference: `MedicationRequest/${order.id}` }, ...(task?.id ? [{ reference: `Task/${task.id}` }] : [])],
    sent: sent.now.toISOString(),
    recipient: sent.to.map((to) => (sent.channel === 'inbox' ? { reference: to } : { display: to })),
    topic: { text: message.subject },
    payload: [{ contentString: message.text }],
  };
}
