import type { Appointment } from '@medplum/fhirtypes';
import {
  appointmentBookedNoticeKey,
  appointmentBookedNoticeMessage,
  appointmentNotBookedAlertKey,
  appointmentNotBookedAlertMessage,
  appointmentNotBookedAlertRecord,
  givesUpItsSlot,
} from './appointment-not-booked-alert';

const appointment: Appointment & { id: string } = {
  resourceType: 'Appointment',
  id: 'ap-1',
  status: 'booked',
  start: '2027-03-20T14:00:00Z',
  end: '2027-03-20T15:00:00Z',
  participant: [
    { actor: { reference: 'Practitioner/nurse' }, status: 'accepted' },
    { actor: { reference: 'Patient/pat-1' }, status: 'accepted' },
  ],
};
const alert = { appointment, failingSince: Date.parse('2027-03-18T09:30:00Z') };

describe('an appointment not taken, as the clinic is told of it', () => {
  it('is keyed once per appointment and channel, its notice beside it', () => {
    expect(appointmentNotBookedAlertKey(alert, 'inbox')).toBe('inbox:appointment-not-booked:Appointment/ap-1');
    expect(appointmentBookedNoticeKey(alert)).toBe('resolved:appointment-not-booked:Appointment/ap-1');
  });

  it("names the appointment's time in the clinic's zone, what goes wrong until it is taken, and no patient by email", () => {
    const email = appointmentNotBookedAlertMessage(alert, { zone: 'America/New_York' });
    expect(email.subject).toBe("Ketamine care plans: a patient's infusion appointment is not taken here yet");
    expect(email.text).toMatch(/An infusion appointment for 2027-03-20 10:00 booked in the scheduling system/);
    expect(email.text).toMatch(/has failed since 2027-03-18 05:30/);
    expect(email.text).toMatch(/reminder to eat nothing for six hours before may come at the wrong time/);
    expect(email.text).not.toMatch(/pat-1|ap-1/);
  });

  it('says of a cancelled one that the session still looks booked and its reminders may still go out', () => {
    const cancelled = { ...alert, appointment: { ...appointment, status: 'cancelled' as const } };
    const email = appointmentNotBookedAlertMessage(cancelled);
    expect(email.subject).toMatch(/cancelled infusion appointment is not taken here yet/);
    expect(email.text).toMatch(/was cancelled in the scheduling system.*its reminders may still reach the patient/s);
    expect(appointmentBookedNoticeMessage(cancelled, { taken: true }).text).toMatch(
      /^The cancelled infusion appointment for 2027-03-20 14:00 you were told of is taken now: the session is back to be booked/,
    );
  });

  it('says it is taken, or changes no session here', () => {
    expect(appointmentBookedNoticeMessage(alert, { taken: true }).text).toMatch(
      /^The infusion appointment for 2027-03-20 14:00 you were told of is taken now: the session is at its time/,
    );
    expect(appointmentBookedNoticeMessage({ appointment: { id: 'gone' } }, { taken: false }).text).toMatch(
      /^The infusion appointment you were told of was looked at again, and changes no session here/,
    );
  });

  it('is recorded about the appointment, its subject the patient among its participants', () => {
    const sent = { channel: 'inbox' as const, to: ['PractitionerRole/on-call'], now: new Date('2027-03-18T10:00:00Z') };
    const record = appointmentNotBookedAlertRecord(alert, appointmentNotBookedAlertMessage(alert), sent);
    expect(record).toMatchObject({
      subject: { reference: 'Patient/pat-1' },
      about: [{ reference: 'Appointment/ap-1' }],
    });
  });

  it('tells a slot given up (cancelled, entered in error) from one held', () => {
    expect(givesUpItsSlot({ status: 'cancelled' })).toBe(true);
    expect(givesUpItsSlot({ status: 'entered-in-error' })).toBe(true);
    expect(givesUpItsSlot({ status: 'booked' })).toBe(false);
    expect(givesUpItsSlot(undefined)).toBe(false);
  });
});
