import type { MedicationAdministration, MedicationRequest, Task } from '@medplum/fhirtypes';
import { orderKeyFor } from '@kc/task-states';
import { ordersGivenWithoutOpenTask, tasksThePumpBegan, tasksThePumpGave } from './superseded';

const administration = (request: string, status: MedicationAdministration['status']): MedicationAdministration => ({
  resourceType: 'MedicationAdministration',
  status,
  subject: { reference: 'Patient/p1' },
  medicationCodeableConcept: { text: 'Ketamine' },
  effectiveDateTime: '2027-01-20T09:00:00Z',
  request: { reference: request },
});
const order = (id: string, taskId?: string): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  id,
  status: 'active',
  intent: 'order',
  subject: { reference: 'Patient/p1' },
  identifier: taskId ? [orderKeyFor(taskId)] : undefined,
});

/** A session approved on the EHR's order `MedicationRequest/ehr` (`onOrder`). */
const onEhrOrder: Task = {
  resourceType: 'Task',
  id: 'on-ehr',
  status: 'ready',
  intent: 'plan',
  basedOn: [{ reference: 'MedicationRequest/ehr' }],
};

describe('the sessions the pump gave during an infusion', () => {
  it('by the order key of the orders it gave, or an EHR order a Task was approved on; not what it never began', () => {
    const given = tasksThePumpGave(
      {
        administrations: [
          administration('MedicationRequest/ours', 'completed'),
          administration('MedicationRequest/ehr', 'in-progress'),
          administration('MedicationRequest/never', 'not-done'),
        ],
        orders: [order('ours', 'booster'), order('ehr'), order('never', 'next')],
        medications: [],
      },
      [onEhrOrder],
    );
    expect([...given].sort()).toEqual(['booster', 'on-ehr']);
  });

  it('the sessions the pump has begun at any time: by the order key of orders with an administration begun or given', () => {
    const begun = tasksThePumpBegan(
      [order('running', 'booster'), order('given', 'next'), order('waiting', 'third'), order('ehr')],
      [
        administration('MedicationRequest/running', 'in-progress'),
        administration('MedicationRequest/given', 'completed'),
        administration('MedicationRequest/ehr', 'completed'),
        administration('MedicationRequest/waiting', 'not-done'),
      ],
    );
    expect([...begun].sort()).toEqual(['booster', 'next']);
  });

  it('a session approved on the EHR’s order the pump has begun: begun (its order is closed with it, so not as moot)', () => {
    const begun = tasksThePumpBegan(
      [order('ehr')],
      [administration('MedicationRequest/ehr', 'in-progress')],
      new Map(),
      [onEhrOrder],
    );
    expect([...begun]).toEqual(['on-ehr']);
  });

  it('the orders it gave whose Task is not open (deleted on the server): completed by the infusion itself', () => {
    const open: Task = { resourceType: 'Task', id: 'open', status: 'ready', intent: 'plan' };
    const orphans = ordersGivenWithoutOpenTask(
      {
        administrations: [
          administration('MedicationRequest/of-deleted', 'completed'),
          administration('MedicationRequest/of-open', 'completed'),
          administration('MedicationRequest/ehr', 'completed'),
          administration('MedicationRequest/closed', 'completed'),
          administration('MedicationRequest/never', 'not-done'),
        ],
        orders: [
          order('of-deleted', 'deleted'),
          order('of-open', 'open'),
          order('ehr'),
          { ...order('closed', 'gone'), status: 'completed' },
          order('never', 'other-gone'),
        ],
        medications: [],
      },
      [open],
    );
    expect(orphans.map((o) => o.id)).toEqual(['of-deleted']);
  });

  it('the EHR’s replacement of a session’s order, begun or given at the pump, counts as the session’s own', () => {
    const replacements = new Map([
      [
        'replaced',
        {
          order: order('ehr-replacement'),
          administrations: [administration('MedicationRequest/ehr-replacement', 'in-progress')],
        },
      ],
      ['waiting', { order: order('ehr-waiting'), administrations: [] }],
    ]);
    expect([...tasksThePumpBegan([], [], replacements)]).toEqual(['replaced']);
    const given = tasksThePumpGave(
      {
        administrations: [administration('MedicationRequest/ehr-replacement', 'completed')],
        orders: [order('ehr-replacement')],
        medications: [],
      },
      [],
      replacements,
    );
    expect([...given]).toEqual(['replaced']);
  });

  it('so does an order of its chain left open beside the one to give (the EHR’s replacement, its cancel not written)', () => {
    const sessionOrders = new Map([
      [
        'session',
        {
          order: order('ours', 'session'),
          administrations: [],
          leftOpen: [
            {
              order: order('left-open'),
              administrations: [administration('MedicationRequest/left-open', 'completed')],
            },
          ],
        },
      ],
    ]);
    expect([...tasksThePumpBegan([], [], sessionOrders)]).toEqual(['session']);
    const given = tasksThePumpGave(
      {
        administrations: [administration('MedicationRequest/left-open', 'completed')],
        orders: [order('left-open')],
        medications: [],
      },
      [],
      sessionOrders,
    );
    // Before session 39 only the order to give was looked at: the session was not the pump's.
    expect([...given]).toEqual(['session']);
  });
});
