import type { MedicationAdministration, MedicationRequest, Task } from '@medplum/fhirtypes';
import { medicationOrder, PUMP_RUNNING } from '../../../test/fixtures/plans';
import {
  replacementsCrossingTheClosing,
  replacementsCrossingTheDoseChange,
  whenClosed,
  whenWritten,
} from './crossed-replacements';
import type { OpenOrder } from './order-in-ehr';
import { orderKeyFor } from './request-authorisation';
import { businessStatus, type TaskState } from './task-states';

const at = (minute: number) => `2027-01-10T10:${String(minute).padStart(2, '0')}:00Z`;
const task = (state: TaskState, status: Task['status'], minute = 5, basedOn: string[] = []): Task => ({
  resourceType: 'Task',
  id: 't1',
  status,
  intent: 'order',
  businessStatus: businessStatus(state),
  statusReason: { text: `${state} here` },
  focus: { reference: 'MedicationRequest/proposal' },
  basedOn: basedOn.map((reference) => ({ reference })),
  meta: { versionId: String(minute), lastUpdated: at(minute) },
});
const open = (order: MedicationRequest, administrations: MedicationAdministration[] = []): OpenOrder => ({
  order,
  administrations,
});
const ehrOrder = (id: string) => ({ ...medicationOrder(id, 'active'), priorPrescription: { reference: 'ours' } });

describe('the EHR’s replacements that crossed a closing here', () => {
  const crossed = (t: Task, orders: OpenOrder[], created: Record<string, string>) =>
    replacementsCrossingTheClosing({
      task: t,
      open: orders,
      closedAt: at(5),
      createdAt: new Map(Object.entries(created)),
    }).map(({ closed }) => [closed.id, closed.status, (closed as MedicationRequest).statusReason?.text]);

  it('cancels one written before the session was withdrawn, rejected or superseded, with its reason', () => {
    for (const [state, status] of [
      ['withdrawn', 'cancelled'],
      ['rejected', 'rejected'],
      ['superseded', 'cancelled'],
    ] as const)
      expect(crossed(task(state, status), [open(ehrOrder('r'))], { 'MedicationRequest/r': at(4) })).toEqual([
        ['r', 'cancelled', expect.stringMatching(state === 'superseded' ? /^Superseded/ : new RegExp(state))],
      ]);
  });

  it('leaves one written after the closing, or when it was written is not known', () => {
    expect(crossed(task('withdrawn', 'cancelled'), [open(ehrOrder('r'))], { 'MedicationRequest/r': at(6) })).toEqual(
      [],
    );
    expect(crossed(task('withdrawn', 'cancelled'), [open(ehrOrder('r'))], {})).toEqual([]);
  });

  it('leaves a session given or still open, an order begun at the pump, and orders reconciled otherwise', () => {
    const before = { 'MedicationRequest/r': at(4), 'MedicationRequest/on': at(1), 'MedicationRequest/k': at(1) };
    expect(crossed(task('done', 'completed'), [open(ehrOrder('r'))], before)).toEqual([]);
    expect(crossed(task('approved', 'ready'), [open(ehrOrder('r'))], before)).toEqual([]);
    // Open again by its status: an EHR set it going again, whatever its business state says.
    expect(crossed(task('withdrawn', 'ready'), [open(ehrOrder('r'))], before)).toEqual([]);
    // A check (it orders nothing): no order of its own to replace.
    const check = { ...task('withdrawn', 'cancelled'), focus: undefined };
    expect(crossed(check, [open(ehrOrder('r'))], before)).toEqual([]);
    const begun = { ...PUMP_RUNNING, request: { reference: 'MedicationRequest/r' } };
    expect(crossed(task('withdrawn', 'cancelled'), [open(ehrOrder('r'), [begun])], before)).toEqual([]);
    // The EHR's order it was approved on (by basedOn), and one written here (by key): the sweep's own.
    const keyed = { ...ehrOrder('k'), identifier: [orderKeyFor('t1')] };
    const approvedOn = task('withdrawn', 'cancelled', 5, ['MedicationRequest/on']);
    expect(crossed(approvedOn, [open(ehrOrder('on')), open(keyed)], before)).toEqual([]);
  });
});

describe('the EHR’s replacements that crossed a dose change here', () => {
  const REASON = 'Replaced by a new order at 0.625 mg/kg/h: the dose was changed before the session';
  // The order the change wrote (keyed by its Task, replacing ours), written at minute 5.
  const newDose: MedicationRequest = {
    ...medicationOrder('new', 'active'),
    identifier: [orderKeyFor('t1')],
    priorPrescription: { reference: 'MedicationRequest/ours' },
  };
  const crossed = (t: Task, orders: OpenOrder[], created: Record<string, string>) =>
    replacementsCrossingTheDoseChange({
      task: t,
      open: orders,
      createdAt: new Map(Object.entries({ 'MedicationRequest/new': at(5), ...created })),
      reason: REASON,
    }).map(({ closed }) => [closed.id, closed.status, (closed as MedicationRequest).statusReason?.text]);
  const approved = task('approved', 'ready');

  it('cancels one written before the change’s order, with the change’s reason', () => {
    expect(crossed(approved, [open(newDose), open(ehrOrder('r'))], { 'MedicationRequest/r': at(4) })).toEqual([
      ['r', 'cancelled', REASON],
    ]);
  });

  it('leaves one written after the change, or when either was written is not known', () => {
    expect(crossed(approved, [open(newDose), open(ehrOrder('r'))], { 'MedicationRequest/r': at(6) })).toEqual([]);
    expect(crossed(approved, [open(newDose), open(ehrOrder('r'))], {})).toEqual([]);
    const unknown = replacementsCrossingTheDoseChange({
      task: approved,
      open: [open(newDose), open(ehrOrder('r'))],
      createdAt: new Map([['MedicationRequest/r', at(4)]]),
      reason: REASON,
    });
    expect(unknown).toEqual([]);
  });

  it('leaves a session not given under a dose change here, a closed one, and an order begun at the pump', () => {
    const before = { 'MedicationRequest/r': at(4) };
    // Given under the order its approval wrote (no prior prescription): no dose change to have crossed.
    const approvedOrder = { ...newDose, priorPrescription: undefined };
    expect(crossed(approved, [open(approvedOrder), open(ehrOrder('r'))], before)).toEqual([]);
    // Given under the EHR's order: the dose was changed there.
    expect(crossed(approved, [open(ehrOrder('r')), open(newDose)], before)).toEqual([]);
    // Another Task's order.
    expect(crossed({ ...approved, id: 't2' }, [open(newDose), open(ehrOrder('r'))], before)).toEqual([]);
    // Closed by its status: the reconciliation of closings answers it (replacementsCrossingTheClosing).
    expect(crossed(task('rejected', 'rejected'), [open(newDose), open(ehrOrder('r'))], before)).toEqual([]);
    const begun = { ...PUMP_RUNNING, request: { reference: 'MedicationRequest/r' } };
    expect(crossed(approved, [open(newDose), open(ehrOrder('r'), [begun])], before)).toEqual([]);
  });
});

describe('when a Task was closed, and a resource written', () => {
  it('the oldest of the closed versions since it was last open', () => {
    const versions = [
      task('withdrawn', 'cancelled', 9),
      task('withdrawn', 'cancelled', 5),
      task('approved', 'ready', 3),
      task('withdrawn', 'cancelled', 1),
    ];
    expect(whenClosed(versions)).toBe(at(5));
    expect(whenClosed([task('approved', 'ready', 9), ...versions])).toBeUndefined();
    expect(whenClosed([])).toBeUndefined();
  });

  it('its oldest version read', () => {
    const version = (minute: number) => ({ ...ehrOrder('r'), meta: { lastUpdated: at(minute) } });
    expect(whenWritten([version(7), version(2)])).toBe(at(2));
    expect(whenWritten([])).toBeUndefined();
  });
});
