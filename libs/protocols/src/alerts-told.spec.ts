import type { Communication } from '@medplum/fhirtypes';
import { alertsTold } from './alerts-told';
import { CLINIC_ALERT_KEY_SYSTEM } from './clinic-alert';

const record = (id: string, key: string, sent: string, topic = 'Ketamine care plans: something'): Communication => ({
  resourceType: 'Communication',
  id,
  status: 'completed',
  identifier: [{ system: CLINIC_ALERT_KEY_SYSTEM, value: key }],
  sent,
  topic: { text: topic },
});

describe('alerts told about a patient, as their timeline shows them', () => {
  it('one per alert whatever its channels, dealt with when its notice came, by any channel', () => {
    const told = alertsTold([
      record(
        'c1',
        'infusion-not-followed-up:Procedure/p1',
        '2027-03-02T11:10:00Z',
        'Ketamine care plans: check not planned',
      ),
      record('c2', 'inbox:infusion-not-followed-up:Procedure/p1', '2027-03-02T11:09:00Z'),
      record('c3', 'inbox:resolved:infusion-not-followed-up:Procedure/p1', '2027-03-02T12:00:00Z'),
      record('c4', 'DetectedIssue/i1', '2027-03-03T09:00:00Z'),
      { resourceType: 'Communication', id: 'c5', status: 'completed', sent: '2027-03-03T10:00:00Z' },
    ]);
    expect(told).toEqual([
      {
        key: 'infusion-not-followed-up:Procedure/p1',
        subject: 'check not planned',
        sent: '2027-03-02T11:09:00Z',
        channels: ['email', 'inbox'],
        noticed: true,
        dealtWith: '2027-03-02T12:00:00Z',
        reference: 'Communication/c1',
      },
      {
        key: 'DetectedIssue/i1',
        subject: 'something',
        sent: '2027-03-03T09:00:00Z',
        channels: ['email'],
        noticed: true,
        reference: 'Communication/c4',
      },
    ]);
  });

  it('says which alerts no notice follows (they ask one thing once)', () => {
    const [closedPlan] = alertsTold([
      record('c1', 'inbox:infusion-under-closed-plan:Procedure/p1', '2027-03-02T11:00:00Z'),
    ]);
    expect(closedPlan).toMatchObject({ noticed: false, channels: ['inbox'] });
    expect(closedPlan.dealtWith).toBeUndefined();
  });
});
