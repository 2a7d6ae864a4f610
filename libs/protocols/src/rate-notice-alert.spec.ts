import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { CLINIC_ALERT_KEY_SYSTEM } from './clinic-alert';
import {
  rateNoticeAlertKey,
  rateNoticeAlertMessage,
  rateNoticeAlertRecord,
  type RateNoticeAlert,
} from './rate-notice-alert';

const order: MedicationRequest = {
  resourceType: 'MedicationRequest',
  id: 'order-1',
  status: 'active',
  intent: 'order',
  subject: { reference: 'Patient/p-1' },
};
const task: Task = {
  resourceType: 'Task',
  id: 'task-1',
  status: 'ready',
  intent: 'order',
  restriction: { period: { start: '2027-01-11T00:00:00Z', end: '2027-01-18T00:00:00Z' } },
};
const alert: RateNoticeAlert = { order, task, proposed: 0.75, ordered: 1, unit: 'mg/kg/h' };

describe('the clinic told of an approved order at odds with its protocol since a late pump record', () => {
  it('one alert per order, rate proposed and channel', () => {
    expect(rateNoticeAlertKey(alert)).toBe('rate-since-approval:MedicationRequest/order-1:0.75');
    expect(rateNoticeAlertKey(alert, 'inbox')).toBe('inbox:rate-since-approval:MedicationRequest/order-1:0.75');
    expect(rateNoticeAlertKey({ ...alert, proposed: 0.5 })).not.toBe(rateNoticeAlertKey(alert));
  });

  it('by email: the rates, when the session is due, where to change it; no patient', () => {
    const message = rateNoticeAlertMessage(alert, { worklistUrl: 'https://careplans.clinic.test/ui' });
    expect(message.subject).toBe(
      "Ketamine care plans: an approved infusion's order gives more than its protocol now proposes, to review",
    );
    expect(message.text).toContain('their protocol proposes 0.75 mg/kg/h; the approved order gives 1 mg/kg/h.');
    expect(message.text).toContain('The session is due from 2027-01-11.');
    expect(message.text).toContain('Review it on the to-do list: https://careplans.clinic.test/ui');
    expect(message.text).toContain('This email names no patient');
    expect(message.text).not.toMatch(/p-1|order-1|task-1/);
    expect(rateNoticeAlertMessage({ ...alert, ordered: 0.5 }).subject).toContain('gives less than');
  });

  it('in the inbox: the patient\u2019s message, about the order and its Task, to the recipients', () => {
    const message = rateNoticeAlertMessage(alert, { channel: 'inbox' });
    expect(message.text).not.toContain('names no patient');
    const record = rateNoticeAlertRecord(alert, message, {
      channel: 'inbox',
      to: ['PractitionerRole/on-call'],
      now: new Date('2027-01-05T08:00:00Z'),
    });
    expect(record).toMatchObject({
      identifier: [
        { system: CLINIC_ALERT_KEY_SYSTEM, value: 'inbox:rate-since-approval:MedicationRequest/order-1:0.75' },
      ],
      status: 'completed',
      subject: { reference: 'Patient/p-1' },
      about: [{ reference: 'MedicationRequest/order-1' }, { reference: 'Task/task-1' }],
      recipient: [{ reference: 'PractitionerRole/on-call' }],
      medium: [{ coding: [{ code: 'ELECTRONIC' }] }],
      sent: '2027-01-05T08:00:00.000Z',
    });
  });
});
