import type { QuestionnaireResponse, Task } from '@medplum/fhirtypes';
import {
  answersNotRecordedAlertKey,
  answersNotRecordedAlertMessage,
  answersNotRecordedAlertRecord,
  answersRecordedNoticeKey,
  answersRecordedNoticeMessage,
} from './answers-not-recorded-alert';

const response: QuestionnaireResponse = {
  resourceType: 'QuestionnaireResponse',
  id: 'qr-1',
  status: 'completed',
  subject: { reference: 'Patient/pat-1' },
  authored: '2027-03-20T02:00:00Z',
};
const alert = {
  about: 'QuestionnaireResponse/qr-1',
  answers: response,
  failingSince: Date.parse('2027-03-20T03:00:00Z'),
};

describe("a patient's check answers not recorded, as the clinic is told of them", () => {
  it('is keyed once per answers (or check) and channel, its notice beside it', () => {
    expect(answersNotRecordedAlertKey(alert, 'inbox')).toBe('inbox:answers-not-recorded:QuestionnaireResponse/qr-1');
    expect(answersRecordedNoticeKey({ about: 'Task/t1' })).toBe('resolved:answers-not-recorded:Task/t1');
  });

  it("names the day they answered in the clinic's zone, what goes unseen, and no patient by email", () => {
    const email = answersNotRecordedAlertMessage(alert, { zone: 'America/New_York' });
    expect(email.text).toMatch(/answers to their post-infusion check \(2027-03-19\) are not recorded here yet/);
    expect(email.text).toMatch(/has failed since 2027-03-19 23:00/);
    expect(email.text).toMatch(/an effect they report is put to no clinician for review/);
    expect(email.text).not.toMatch(/pat-1|qr-1/);
  });

  it('says they are recorded, or answer no open check here', () => {
    expect(answersRecordedNoticeMessage(alert, { recorded: true }).text).toMatch(
      /^The post-infusion check answers of 2027-03-20 you were told of are recorded now/,
    );
    expect(answersRecordedNoticeMessage({}, { recorded: false }).text).toMatch(
      /^The post-infusion check answers you were told of were looked at again, and answer no open check here/,
    );
  });

  it("is recorded about the answers, its subject the patient (a check Task's `for`)", () => {
    const check: Task = {
      resourceType: 'Task',
      id: 't1',
      status: 'completed',
      intent: 'order',
      for: { reference: 'Patient/pat-2' },
    };
    const sent = { channel: 'inbox' as const, to: ['PractitionerRole/on-call'], now: new Date('2027-03-20T04:00:00Z') };
    const record = answersNotRecordedAlertRecord(
      { about: 'Task/t1', answers: check },
      answersNotRecordedAlertMessage({ about: 'Task/t1', answers: check, failingSince: 0 }),
      sent,
    );
    expect(record).toMatchObject({ subject: { reference: 'Patient/pat-2' }, about: [{ reference: 'Task/t1' }] });
  });
});
