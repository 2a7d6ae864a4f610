import type { CarePlan, MedicationRequest, Task } from '@medplum/fhirtypes';
import { TASK_KEY_SYSTEM } from '@kc/protocols';
import { businessStatus } from '@kc/task-states';
import { sessionsProposedAgainForNewEnd } from './plans-extended';

const plan = (end?: string, status: CarePlan['status'] = 'active'): CarePlan => ({
  resourceType: 'CarePlan',
  id: 'p',
  status,
  intent: 'plan',
  subject: { reference: 'Patient/a' },
  period: { start: '2027-01-01', ...(end ? { end } : {}) },
});
const withdrawn = (id: string, start: string, reason: string): Task => ({
  resourceType: 'Task',
  id,
  status: 'cancelled',
  intent: 'order',
  basedOn: [{ reference: 'CarePlan/p' }],
  focus: { reference: `MedicationRequest/${id}-proposal` },
  businessStatus: businessStatus('withdrawn'),
  statusReason: { text: reason },
  restriction: { period: { start, end: `${start.slice(0, 8)}28T00:00:00.000Z` } },
});
const proposal = (id: string): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  id: `${id}-proposal`,
  status: 'cancelled',
  intent: 'proposal',
  subject: { reference: 'Patient/a' },
  medicationCodeableConcept: { text: 'ketamine' },
});
const forEnd = (id: string, start: string) =>
  withdrawn(id, start, 'Withdrawn: it would begin after its plan ends (2027-01-10)');
const now = new Date('2027-01-05T00:00:00Z');
const proposals = new Map([
  ['MedicationRequest/s1-proposal', proposal('s1')],
  ['MedicationRequest/s2-proposal', proposal('s2')],
]);

describe('sessions proposed again when their plan’s end moves (sessionsProposedAgainForNewEnd)', () => {
  it('those withdrawn for the old end that the new end allows, awaiting approval, with a copy of the proposal', () => {
    const tasks = [forEnd('s1', '2027-02-01T00:00:00.000Z'), forEnd('s2', '2027-04-01T00:00:00.000Z')];
    const again = sessionsProposedAgainForNewEnd({ carePlan: plan('2027-03-01'), tasks, proposals, now });
    expect(again.map((a) => a.replaces.id)).toEqual(['s1']);
    expect(again[0].task).toMatchObject({
      status: 'draft',
      statusReason: { text: "Proposed again: its plan's end was moved to 2027-03-01 in the EHR" },
      identifier: [{ system: TASK_KEY_SYSTEM, value: 'p:after-end-s1' }],
      focus: { reference: again[0].proposal!.fullUrl },
    });
    expect(again[0].proposal!.resource.status).toBe('draft');
  });

  it('none once proposed again (its key among the plan’s Tasks), none of other withdrawals, none for a plan not holding care', () => {
    const s1 = forEnd('s1', '2027-02-01T00:00:00.000Z');
    const proposedAgain: Task = {
      ...s1,
      id: 'again',
      status: 'draft',
      businessStatus: businessStatus('awaiting-approval'),
      statusReason: undefined,
      identifier: [{ system: TASK_KEY_SYSTEM, value: 'p:after-end-s1' }],
    };
    expect(sessionsProposedAgainForNewEnd({ carePlan: plan(), tasks: [s1, proposedAgain], proposals, now })).toEqual(
      [],
    );
    const stopped = withdrawn('s2', '2027-02-01T00:00:00.000Z', 'Withdrawn: its care plan is on hold');
    expect(sessionsProposedAgainForNewEnd({ carePlan: plan(), tasks: [stopped], proposals, now })).toEqual([]);
    expect(
      sessionsProposedAgainForNewEnd({ carePlan: plan(undefined, 'revoked'), tasks: [s1], proposals, now }),
    ).toEqual([]);
  });
});
