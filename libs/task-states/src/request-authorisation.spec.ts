import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { orderAnsweredBy, orderForClosedTask } from './request-authorisation';
import { awaitingApproval, transition } from './task-states';

const now = new Date('2027-01-10T00:00:00Z');
const order = (status: MedicationRequest['status'] = 'active'): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  id: 'o1',
  status,
  intent: 'order',
  subject: { reference: 'Patient/p1' },
});
const approved: Task = transition({ resourceType: 'Task', id: 't1', ...awaitingApproval() }, { event: 'approve', now });

describe('an order closed with its Task', () => {
  it('given: completed, any hold reason gone; made moot: cancelled naming the infusion', () => {
    const held = { ...order('on-hold'), statusReason: { text: 'Held' } };
    expect(orderAnsweredBy(held, 'done', { reference: 'Procedure/p' })).toEqual({ ...order('completed') });
    expect(orderAnsweredBy(order(), 'superseded', { reference: 'Procedure/p' })).toMatchObject({
      status: 'cancelled',
      statusReason: { text: 'Superseded: a later infusion was completed (Procedure/p)' },
    });
  });

  it('the reconciliation closes the order of a done, superseded, rejected or withdrawn Task, and nothing else', () => {
    const done = transition(approved, { event: 'complete', now, output: { reference: 'Procedure/p' } });
    const moot = transition(approved, { event: 'supersede', now, output: { reference: 'Procedure/q' } });
    const rejected = transition(approved, { event: 'reject', now, reason: 'Patient declined' });
    expect(orderForClosedTask(done, order())?.status).toBe('completed');
    expect(orderForClosedTask(moot, order())).toMatchObject({
      status: 'cancelled',
      statusReason: { text: expect.stringContaining('Procedure/q') as string },
    });
    expect(orderForClosedTask(rejected, order())).toMatchObject({
      status: 'cancelled',
      statusReason: { text: 'Patient declined' },
    });
    const withdrawn = transition(approved, { event: 'withdraw', now, reason: 'Withdrawn: its care plan is completed' });
    expect(orderForClosedTask(withdrawn, order('on-hold'))).toMatchObject({
      status: 'cancelled',
      statusReason: { text: 'Withdrawn: its care plan is completed' },
    });
    // Closed by an EHR setting Task.status alone (its business state still approved): as the status says.
    expect(orderForClosedTask({ ...approved, status: 'completed' }, order())?.status).toBe('completed');
    expect(orderForClosedTask({ ...approved, status: 'cancelled' }, order())).toMatchObject({
      status: 'cancelled',
      statusReason: { text: 'Its Task was cancelled in the EHR' },
    });
    expect(orderForClosedTask({ ...approved, status: 'on-hold' }, order())).toBeUndefined();
    // Open Task, or an order already closed (a pharmacist stopped it): left alone.
    expect(orderForClosedTask(approved, order())).toBeUndefined();
    expect(orderForClosedTask(done, order('stopped'))).toBeUndefined();
  });
});
