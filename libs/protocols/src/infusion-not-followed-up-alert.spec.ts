import type { Procedure } from '@medplum/fhirtypes';
import {
  infusionFollowedUpNoticeKey,
  infusionFollowedUpNoticeMessage,
  infusionNotFollowedUpAlertKey,
  infusionNotFollowedUpAlertMessage,
  infusionNotFollowedUpAlertRecord,
} from './infusion-not-followed-up-alert';

const procedure: Procedure & { id: string } = {
  resourceType: 'Procedure',
  id: 'p1',
  status: 'completed',
  subject: { reference: 'Patient/pat-1' },
  basedOn: [{ reference: 'CarePlan/cp-1' }],
  performedPeriod: { start: '2027-03-02T22:30:00Z', end: '2027-03-02T23:30:00Z' },
};
const alert = {
  procedure,
  carePlan: {
    resourceType: 'CarePlan' as const,
    id: 'cp-1',
    status: 'active' as const,
    intent: 'plan' as const,
    subject: { reference: 'Patient/pat-1' },
    title: 'Low-dose ketamine infusion series',
  },
  failingSince: Date.parse('2027-03-03T00:10:00Z'),
};

describe('an infusion whose follow-up keeps failing, as the clinic is told of it', () => {
  it('is keyed once per infusion and channel, its notice beside it', () => {
    expect(infusionNotFollowedUpAlertKey(alert)).toBe('infusion-not-followed-up:Procedure/p1');
    expect(infusionNotFollowedUpAlertKey(alert, 'inbox')).toBe('inbox:infusion-not-followed-up:Procedure/p1');
    expect(infusionFollowedUpNoticeKey(alert, 'inbox')).toBe('inbox:resolved:infusion-not-followed-up:Procedure/p1');
  });

  it("names the infusion's day and the failure's time in the clinic's zone, and no patient by email", () => {
    const email = infusionNotFollowedUpAlertMessage(alert, { zone: 'America/New_York' });
    expect(email.text).toMatch(/infusion on 2027-03-02 under a patient's Low-dose ketamine infusion series/);
    expect(email.text).toMatch(/has failed since 2027-03-02 19:10/);
    expect(email.text).not.toMatch(/pat-1|p1\b|cp-1/);
    expect(email.text).toMatch(/This email names no patient/);
    expect(infusionNotFollowedUpAlertMessage(alert, { channel: 'inbox' }).text).toMatch(
      /This message names the patient/,
    );
  });

  it('says whether the follow-up, once run, planned the check or why it planned nothing', () => {
    expect(infusionFollowedUpNoticeMessage(alert, { planned: true }).text).toMatch(
      /infusion on 2027-03-02 you were told of is planned now: its post-infusion check is on the worklist/,
    );
    expect(infusionFollowedUpNoticeMessage(alert, { planned: false, why: 'its care plan was stopped' }).text).toMatch(
      /has run, and planned nothing: its care plan was stopped\./,
    );
    // The infusion gone from the server meanwhile: no day to name.
    expect(infusionFollowedUpNoticeMessage({ procedure: {} }, { planned: true }).text).toMatch(
      /^What follows the ketamine infusion you were told of is planned now/,
    );
  });

  it('is recorded as an urgent Communication about the infusion and its plan, its subject the patient', () => {
    const message = infusionNotFollowedUpAlertMessage(alert);
    const record = infusionNotFollowedUpAlertRecord(alert, message, {
      channel: 'inbox',
      to: ['PractitionerRole/on-call'],
      now: new Date('2027-03-03T01:10:00Z'),
    });
    expect(record).toMatchObject({
      priority: 'urgent',
      subject: { reference: 'Patient/pat-1' },
      about: [{ reference: 'Procedure/p1' }, { reference: 'CarePlan/cp-1' }],
      identifier: [{ value: 'inbox:infusion-not-followed-up:Procedure/p1' }],
      recipient: [{ reference: 'PractitionerRole/on-call' }],
    });
  });
});
