import type { Communication, MedicationRequest, Task } from '@medplum/fhirtypes';
import {
  alertCommunication,
  namesNoPatient,
  onChannel,
  reviewOn,
  type AlertSent,
  type ClinicAlertChannel,
  type ClinicAlertContext,
  type ClinicAlertMessage,
} from './clinic-alert';
import { replacedByDoseChange } from '@kc/task-states';
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
export function rateNoticeAlertKey(
  alert: Pick<RateNoticeAlert, 'order' | 'proposed'>,
  channel: ClinicAlertChannel = 'email',
): string {
  return onChannel(`rate-since-approval:MedicationRequest/${alert.order.id}:${alert.proposed}`, channel);
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

/**
 * The record that the clinic was told (alertCommunication, about the order and its session's Task), or a notice that
 * the alert is dealt with (`resolved`: its key, the alert it answers).
 */
export function rateNoticeAlertRecord(
  alert: Pick<RateNoticeAlert, 'order' | 'proposed' | 'task'>,
  message: ClinicAlertMessage,
  sent: AlertSent,
): Communication {
  const { order, task } = alert;
  return alertCommunication(message, sent, {
    key: rateNoticeAlertKey(alert, sent.channel ?? 'email'),
    subject: order.subject,
    about: [{ reference: `MedicationRequest/${order.id}` }, ...(task?.id ? [{ reference: `Task/${task.id}` }] : [])],
  });
}

/**
 * The key of the notice that a rate alert is dealt with, per order, rate and channel, beside the alert's
 * (`resolved:rate-since-approval:...`).
 */
export function rateNoticeDealtWithKey(
  alert: Pick<RateNoticeAlert, 'order' | 'proposed'>,
  channel: ClinicAlertChannel = 'email',
): string {
  return onChannel(`resolved:${rateNoticeAlertKey(alert, 'email')}`, channel);
}

/**
 * How an order's rate notice stopped applying, in words (asked once it no longer stands: the order closed, the pump
 * begun, or its rate now the one noted): its dose changed (here, a new order replacing it; or in place), the session
 * given or begun at the pump (`begun`), or the order no longer to be given.
 */
export function rateNoticeEnding(order: MedicationRequest, begun: boolean): string {
  if (order.status === 'completed') return 'the session was given';
  if (begun) return 'the session was begun at the pump';
  if (order.status === 'active' || order.status === 'on-hold') return 'the order now gives another rate';
  if (replacedByDoseChange(order)) return 'its dose was changed';
  return `the order is no longer to be given (${order.status})`;
}

/** What the clinic is told when a rate alert is dealt with: which alert, how. By email, no patient. */
export function rateNoticeDealtWithMessage(
  alert: { proposed: number; unit?: string },
  ending: string,
  { worklistUrl, channel }: ClinicAlertContext = {},
): ClinicAlertMessage {
  const rate = `${alert.proposed}${alert.unit ? ` ${alert.unit}` : ''}`;
  return {
    subject: "Ketamine care plans: dealt with: an approved infusion's order at odds with its protocol",
    text: [
      `The alert you were sent about an approved infusion's order (its protocol proposing ${rate} since the pump's late record) is dealt with: ${ending}. Nothing more is asked of you by that alert.`,
      worklistUrl
        ? `The patient's sessions are on the to-do list: ${worklistUrl}.`
        : "The patient's sessions are on the clinician to-do list.",
      ...namesNoPatient(channel),
    ].join('\n\n'),
  };
}
