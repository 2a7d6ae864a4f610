import type { MedicationRequest } from '@medplum/fhirtypes';
import { orderKeyFor } from '@kc/task-states';
import { tasksToFollowSince } from './to-do-orders';

const order = (id: string, extra: Partial<MedicationRequest> = {}): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  id,
  status: 'active',
  intent: 'order',
  subject: { reference: 'Patient/p-1' },
  ...extra,
});
const ours = (id: string, task: string, status: MedicationRequest['status'] = 'active') =>
  order(id, { identifier: [orderKeyFor(task)], status });
const patientOf = (task: string) => (task === 'task-2' ? 'Patient/p-2' : 'Patient/p-1');

describe("which to-do sessions' patients' orders since are read (a search more)", () => {
  it('none when every session has an open order and no open order names one unread', () => {
    const byTask = new Map([['task-1', [ours('o-1', 'task-1')]]]);
    // The EHR's replacement left open beside ours names ours, which the page has read.
    const open = [ours('o-1', 'task-1'), order('r-1', { priorPrescription: { reference: 'MedicationRequest/o-1' } })];
    expect(tasksToFollowSince(byTask, open, patientOf)).toEqual([]);
  });

  it('a session whose orders are all closed: a replacement may give it', () => {
    const byTask = new Map([
      ['task-1', [ours('o-1', 'task-1', 'cancelled')]],
      ['task-2', [ours('o-2', 'task-2')]],
    ]);
    expect(tasksToFollowSince(byTask, [], patientOf)).toEqual(['task-1']);
  });

  it('a session whose patient has an open order naming one the page has not read (replaced twice, the first cancelled)', () => {
    const byTask = new Map([
      ['task-1', [ours('o-1', 'task-1')]],
      ['task-2', [ours('o-2', 'task-2')]],
    ]);
    const open = [
      ours('o-1', 'task-1'),
      order('r-2', { priorPrescription: { reference: 'MedicationRequest/r-1' } }),
      ours('o-2', 'task-2'),
    ];
    // Only the patient with that order: task-2's patient has none.
    expect(tasksToFollowSince(byTask, open, patientOf)).toEqual(['task-1']);
    // `basedOn` an order links it as `priorPrescription` does.
    const basedOn = [ours('o-1', 'task-1'), order('r-2', { basedOn: [{ reference: 'MedicationRequest/r-1' }] })];
    expect(tasksToFollowSince(byTask, basedOn, patientOf)).toEqual(['task-1']);
  });
});
