import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { doseChangeReason } from '@kc/task-states';
import { CLINIC_ALERT_KEY_SYSTEM } from './clinic-alert';
import {
  rateNoticeAlertKey,
  rateNoticeAlertMessage,
  rateNoticeAlertRecord,
  rateNoticeDealtWithKey,
  rateNoticeDealtWithMessage,
  rateNoticeEnding,
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

describe('the clinic told that a rate alert is dealt with', () => {
  const ended = (o: Partial<MedicationRequest>, begun = false) => rateNoticeEnding({ ...order, ...o }, begun);

  it('how the notice stopped applying, in words (the sweep asks only once it no longer stands)', () => {
    expect(ended({ status: 'cancelled', statusReason: { text: doseChangeReason('0.75 mg/kg/h (60 mg/h)') } })).toBe(
      'its dose was changed',
    );
    expect(ended({ status: 'completed' })).toBe('the session was given');
    expect(ended({ status: 'active' }, true)).toBe('the session was begun at the pump');
    expect(ended({ status: 'active' })).toBe('the order now gives another rate');
    expect(ended({ status: 'cancelled', statusReason: { text: 'Patient unwell' } })).toBe(
      'the order is no longer to be given (cancelled)',
    );
  });

  it('its key beside the alert\u2019s; by email no patient; recorded in answer to the alert, routine', () => {
    expect(rateNoticeDealtWithKey(alert, 'inbox')).toBe(
      'inbox:resolved:rate-since-approval:MedicationRequest/order-1:0.75',
    );
    const message = rateNoticeDealtWithMessage({ proposed: 0.75, unit: 'mg/kg/h' }, 'its dose was changed');
    expect(message.text).toContain('is dealt with: its dose was changed. Nothing more is asked of you by that alert.');
    expect(message.text).toContain('This email names no patient');
    const record = rateNoticeAlertRecord(alert, message, {
      channel: 'email',
      to: ['oncall@clinic.test'],
      now: new Date('2027-01-05T08:00:00Z'),
      resolved: { key: rateNoticeDealtWithKey(alert), alert: 'Communication/alert-1' },
    });
    expect(record).toMatchObject({
      identifier: [{ value: 'resolved:rate-since-approval:MedicationRequest/order-1:0.75' }],
      inResponseTo: [{ reference: 'Communication/alert-1' }],
      priority: 'routine',
      recipient: [{ display: 'oncall@clinic.test' }],
    });
  });
});
