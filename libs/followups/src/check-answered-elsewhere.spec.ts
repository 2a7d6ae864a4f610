import type { QuestionnaireResponse, Task } from '@medplum/fhirtypes';
import { awaitingApproval } from '@kc/task-states';
import { answeredCheck, checkAnsweredBy, questionnaireAsked } from './check-answered-elsewhere';

const QUESTIONNAIRE = 'https://ketamine-careplans.example/fhir/Questionnaire/post-infusion-check';

const check = (id: string, dueFrom: string, extra: Partial<Task> = {}): Task => ({
  resourceType: 'Task',
  id,
  ...awaitingApproval(),
  for: { reference: 'Patient/p1' },
  input: [{ type: { text: 'Collect information' }, valueCanonical: `${QUESTIONNAIRE}|1.0.0` }],
  restriction: { period: { start: dueFrom, end: '2027-02-01T00:00:00Z' } },
  ...extra,
});

const answers = (extra: Partial<QuestionnaireResponse> = {}): QuestionnaireResponse => ({
  resourceType: 'QuestionnaireResponse',
  id: 'qr-1',
  status: 'completed',
  questionnaire: QUESTIONNAIRE,
  subject: { reference: 'Patient/p1' },
  authored: '2027-01-06T10:00:00Z',
  ...extra,
});

describe('answers written without the Task (a portal): which check they answer', () => {
  it("the patient's open check asking that Questionnaire, due by then, of the latest infusion", () => {
    const first = check('first', '2027-01-04T10:00:00Z');
    const second = check('second', '2027-01-05T10:00:00Z');
    const later = check('later', '2027-01-20T10:00:00Z');
    expect(questionnaireAsked(first)).toBe(QUESTIONNAIRE);
    // Answers of the 6th: how the patient is after the infusion of the 5th, not the one of the 4th.
    expect(checkAnsweredBy(answers(), [later, second, first])).toEqual({ task: second });
  });

  it('answers that name their infusion (partOf) or their plan (basedOn) answer that one’s check', () => {
    const first = check('first', '2027-01-04T10:00:00Z', {
      reasonReference: { reference: 'Procedure/infusion-1' },
      basedOn: [{ reference: 'CarePlan/a' }],
    });
    const second = check('second', '2027-01-05T10:00:00Z', {
      reasonReference: { reference: 'Procedure/infusion-2' },
      basedOn: [{ reference: 'CarePlan/b' }],
    });
    const later = check('later', '2027-01-20T10:00:00Z', { reasonReference: { reference: 'Procedure/infusion-3' } });
    const tasks = [first, second, later];
    expect(checkAnsweredBy(answers({ partOf: [{ reference: 'Procedure/infusion-1' }] }), tasks)).toEqual({
      task: first,
    });
    // Named, it is that check even before its window (a portal asking right after the session).
    expect(checkAnsweredBy(answers({ partOf: [{ reference: 'Procedure/infusion-3' }] }), tasks)).toEqual({
      task: later,
    });
    expect(checkAnsweredBy(answers({ partOf: [{ reference: 'Procedure/unknown' }] }), tasks)).toEqual({
      none: 'the check of the infusion they name is not open',
    });
    expect(checkAnsweredBy(answers({ basedOn: [{ reference: 'CarePlan/a' }] }), tasks)).toEqual({ task: first });
    expect(checkAnsweredBy(answers({ basedOn: [{ reference: 'CarePlan/other' }] }), tasks)).toEqual({
      none: 'no open check of the plan they name asks these questions',
    });
  });

  it('none: answers taken already, not final, before any check was due, or no check of theirs asks them', () => {
    const open = check('open', '2027-01-04T10:00:00Z');
    const taken = check('taken', '2027-01-03T10:00:00Z', {
      status: 'completed',
      output: [{ type: { text: 'answers' }, valueReference: { reference: 'QuestionnaireResponse/qr-1' } }],
    });
    expect(checkAnsweredBy(answers(), [open, taken])).toEqual({ none: 'a Task already names these answers' });
    expect(checkAnsweredBy(answers({ status: 'in-progress' }), [open])).toEqual({
      none: 'its answers are not final (in-progress)',
    });
    expect(checkAnsweredBy(answers({ authored: '2027-01-01T10:00:00Z' }), [open])).toEqual({
      none: 'answered before any of its open checks was due',
    });
    expect(checkAnsweredBy(answers({ subject: { reference: 'Patient/p2' } }), [open])).toEqual({
      none: 'no open check of the patient asks these questions',
    });
    expect(checkAnsweredBy(answers({ questionnaire: 'https://other.example/Questionnaire/phq-9' }), [open])).toEqual({
      none: 'no open check of the patient asks these questions',
    });
    // A closed check is not answered again.
    const done = check('done', '2027-01-04T10:00:00Z', { status: 'completed' });
    expect(checkAnsweredBy(answers(), [done])).toEqual({ none: 'no open check of the patient asks these questions' });
  });

  it('the check as if the EHR completed it: the answers in its output, ended when given', () => {
    const open = check('open', '2027-01-04T10:00:00Z');
    const answered = answeredCheck(open, answers() as QuestionnaireResponse & { id: string });
    expect(answered).toMatchObject({
      status: 'completed',
      executionPeriod: { end: '2027-01-06T10:00:00Z' },
      output: [{ valueReference: { reference: 'QuestionnaireResponse/qr-1' } }],
    });
  });
});
