import type { Procedure, Task } from '@medplum/fhirtypes';
import { infusionInErrorIssue, isInfusionInError, tasksOfInfusion } from './infusion-in-error';

const task = (id: string, extra: Partial<Task> = {}): Task => ({
  resourceType: 'Task',
  id,
  status: 'draft',
  intent: 'plan',
  ...extra,
});
const procedure: Procedure = { resourceType: 'Procedure', id: 'p1', status: 'entered-in-error', subject: {} };

describe('an infusion recorded in error', () => {
  it('left behind what it planned and what it answered; other infusions’ Tasks are not its', () => {
    const planned = task('check', { reasonReference: { reference: 'Procedure/p1' } });
    const done = task('session', {
      status: 'completed',
      output: [{ type: { text: 'fulfilled-by' }, valueReference: { reference: 'Procedure/p1' } }],
    });
    const other = task('next', { reasonReference: { reference: 'Procedure/p2' } });
    const left = tasksOfInfusion('p1', [planned, done, other]);
    expect([left.planned.map((t) => t.id), left.answered.map((t) => t.id)]).toEqual([['check'], ['session']]);

    const issue = infusionInErrorIssue({
      procedure,
      carePlan: 'CarePlan/cp',
      patient: { reference: 'Patient/x' },
      ...left,
      identified: '2027-01-05T10:00:00.000Z',
    })!;
    expect(isInfusionInError(issue)).toBe(true);
    // Unresolved (preliminary), keyed by the infusion so it is recorded once.
    expect(issue.status).toBe('preliminary');
    expect(issue.identifier?.[0].value).toBe('Procedure/p1');
    expect(issue.implicated?.map((r) => r.reference)).toEqual(['CarePlan/cp', 'Task/check', 'Task/session']);
  });

  it('an infusion that left nothing behind records nothing', () => {
    expect(
      infusionInErrorIssue({
        procedure,
        carePlan: 'CarePlan/cp',
        patient: { reference: 'Patient/x' },
        planned: [],
        answered: [],
        identified: '2027-01-05T10:00:00.000Z',
      }),
    ).toBeUndefined();
  });

  it('taken back before its follow-ups, with a session the pump gave during it: the issue names the session and says nothing was planned', () => {
    const issue = infusionInErrorIssue({
      procedure,
      carePlan: 'CarePlan/cp',
      patient: { reference: 'Patient/x' },
      planned: [],
      answered: [],
      givenAtThePump: [task('session', { status: 'completed' })],
      identified: '2027-01-05T10:00:00.000Z',
    })!;
    expect(issue.implicated?.map((r) => r.reference)).toEqual(['CarePlan/cp', 'Task/session']);
    expect(issue.detail).toMatch(
      /^The infusion Procedure\/p1 was recorded in error before its follow-ups were planned/,
    );
    expect(issue.detail).toMatch(/no post-infusion check or next session was planned/);
  });

  it('followed up, with a session the pump gave during it that its follow-up left open: the issue says both', () => {
    const issue = infusionInErrorIssue({
      procedure,
      carePlan: 'CarePlan/cp',
      patient: { reference: 'Patient/x' },
      planned: [task('check', { reasonReference: { reference: 'Procedure/p1' } })],
      answered: [],
      givenAtThePump: [task('session', { status: 'completed' })],
      identified: '2027-01-05T10:00:00.000Z',
    })!;
    expect(issue.implicated?.map((r) => r.reference)).toEqual(['CarePlan/cp', 'Task/check', 'Task/session']);
    expect(issue.detail).toMatch(/^The infusion Procedure\/p1 was recorded in error after its follow-ups were planned/);
    expect(issue.detail).toMatch(
      /The pump recorded giving 1 approved session\(s\) during it that its follow-up had not answered: they are done/,
    );
  });
});
