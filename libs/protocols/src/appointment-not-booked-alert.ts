import type { Appointment, Communication, Patient, Reference } from '@medplum/fhirtypes';
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
import { clinicDateTime } from './clinic-time';

/**
 * An appointment the scheduling system booked (or cancelled) for a patient's approved infusion session that this
 * service has kept failing to take. Until it does, the session's reminders stay timed from its protocol window, not
 * from the appointment: the fasting reminder may not come six hours before it (or, for a cancelled one, reminders go
 * out for a session at no time), and nothing on the page shows it. The clinic is told once the job has failed for
 * FOLLOW_UP_FAILING_ALERT_MS, and again once it has run (since session 62).
 */
export interface AppointmentNotBookedAlert {
  appointment: Partial<Appointment> & { id: string };
  failingSince: number;
}

/** How taking it ran in the end: the session at the appointment's time (or, cancelled, unbooked), or not. */
export type BookingRan = { taken: boolean };

/**
 * The statuses by which an appointment gives its slot up: its session unbooked (bookingFor, libs/followups), a
 * cancellation to take rather than a booking.
 */
export const GIVES_UP_ITS_SLOT: readonly Appointment['status'][] = ['cancelled', 'entered-in-error'];

/** Whether the appointment gives its slot up (its session to be unbooked) rather than holding one. */
export function givesUpItsSlot(appointment: Partial<Pick<Appointment, 'status'>> | undefined): boolean {
  return GIVES_UP_ITS_SLOT.some((status) => status === appointment?.status);
}

/** One alert per appointment and channel. */
export function appointmentNotBookedAlertKey(
  alert: { appointment: { id: string } },
  channel: ClinicAlertChannel = 'email',
): string {
  return onChannel(`appointment-not-booked:Appointment/${alert.appointment.id}`, channel);
}

/** The key of the notice that it has been taken (or looked at again), beside the alert's. */
export function appointmentBookedNoticeKey(
  alert: { appointment: { id: string } },
  channel: ClinicAlertChannel = 'email',
): string {
  return onChannel(`resolved:${appointmentNotBookedAlertKey(alert, 'email')}`, channel);
}

/** What the clinic is told: the appointment's time, since when taking it fails, what that leaves wrong. No patient. */
export function appointmentNotBookedAlertMessage(
  alert: AppointmentNotBookedAlert,
  { worklistUrl, channel, zone }: ClinicAlertContext = {},
): ClinicAlertMessage {
  const when = alert.appointment.start ? ` for ${clinicDateTime(alert.appointment.start, zone)}` : '';
  const since = clinicDateTime(alert.failingSince, zone);
  const cancelled = givesUpItsSlot(alert.appointment);
  return {
    subject: cancelled
      ? "Ketamine care plans: a patient's cancelled infusion appointment is not taken here yet"
      : "Ketamine care plans: a patient's infusion appointment is not taken here yet",
    text: [
      cancelled
        ? `An infusion appointment${when} was cancelled in the scheduling system, and that is not taken here yet: taking it has failed since ${since}. Until it is, the session still looks booked here and its reminders may still reach the patient. An operator sees why among the service's dead letters.`
        : `An infusion appointment${when} booked in the scheduling system is not taken here yet: taking it has failed since ${since}. Until it is, the session's reminders are timed from its protocol window, not from the appointment: the reminder to eat nothing for six hours before may come at the wrong time. An operator sees why among the service's dead letters.`,
      cancelled
        ? 'If the patient may still come, tell them the appointment is cancelled. The service keeps trying by itself and tells you once it has taken it.'
        : 'If the appointment is soon, give the patient its instructions yourself (fasting, a ride home). The service keeps trying by itself and tells you once it has taken it.',
      ...howToFindThePatient(channel, worklistUrl),
    ].join('\n\n'),
  };
}

/** What the clinic is told once taking it has run. No patient by email. */
export function appointmentBookedNoticeMessage(
  alert: Pick<AppointmentNotBookedAlert, 'appointment'>,
  ran: BookingRan,
  { channel, zone }: ClinicAlertContext = {},
): ClinicAlertMessage {
  const when = alert.appointment.start ? ` for ${clinicDateTime(alert.appointment.start, zone)}` : '';
  const cancelled = givesUpItsSlot(alert.appointment);
  const taken = cancelled
    ? `The cancelled infusion appointment${when} you were told of is taken now: the session is back to be booked, and its reminders are withdrawn.`
    : `The infusion appointment${when} you were told of is taken now: the session is at its time, and its reminders follow it.`;
  const notTaken = `The infusion appointment${when} you were told of was looked at again, and changes no session here: read the patient's sessions on the worklist.`;
  return {
    subject: "Ketamine care plans: dealt with: a patient's infusion appointment was not taken",
    text: [
      ran.taken ? taken : notTaken,
      'Nothing more is asked of you by that alert.',
      ...namesNoPatient(channel),
    ].join('\n\n'),
  };
}

/** The record that the clinic was told (or of the notice, `resolved`): about the appointment, its subject the patient. */
export function appointmentNotBookedAlertRecord(
  alert: Pick<AppointmentNotBookedAlert, 'appointment'>,
  message: ClinicAlertMessage,
  sent: AlertSent,
): Communication {
  return alertCommunication(message, sent, {
    key: appointmentNotBookedAlertKey(alert, sent.channel ?? 'email'),
    subject: patientOf(alert.appointment),
    about: [{ reference: `Appointment/${alert.appointment.id}` }],
  });
}

/** The appointment's patient: its participant that is a Patient. */
function patientOf(appointment: Partial<Appointment>): Reference<Patient> | undefined {
  const actor = appointment.participant?.find((p) => p.actor?.reference?.startsWith('Patient/'))?.actor;
  return actor as Reference<Patient> | undefined;
}
