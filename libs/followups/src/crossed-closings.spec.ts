import type { MedicationAdministration, MedicationRequest, Procedure, Task } from '@medplum/fhirtypes';
import { cancelledProposal, orderAnsweredBy, orderKeyFor, stateOf, transition } from '@kc/task-states';
import { medicationOrder, planTask, PUMP_RUNNING } from '../../../test/fixtures/plans';
import { cancelledOrdersGivenDuring, crossedClosingOf, type PumpRecord } from './crossed-closings';
import { applyInfusionUpdate } from './superseded';

const now = new Date('2027-01-10T12:00:00Z');
const at = (minute: number) => `2027-01-10T10:${String(minute).padStart(2, '0')}:00.000Z`;
const version = <T extends Task | MedicationRequest | MedicationAdministration>(
  r: T,
  v: string,
  minute: number,
): T => ({
  ...r,
  meta: { versionId: v, lastUpdated: at(minute) },
});

/** An approved session (its Task and order) closed at minute 20 by this service: withdrawn or superseded. */
function closedAt20(how: 'withdrawn' | 'superseded') {
  const approved = version(planTask('session', 'plan', new Date(at(0))), '2', 0);
  const order = version(
    { ...medicationOrder('order', 'active', 'plan'), identifier: [orderKeyFor('session')] },
    '1',
    0,
  );
  const closedTask =
    how === 'withdrawn'
      ? transition(approved, { event: 'withdraw', now, reason: 'Withdrawn: its care plan was stopped (revoked)' })
      : applyInfusionUpdate(
          { task: approved, outcome: 'superseded', by: { reference: 'Procedure/other' } },
          new Date(at(20)),
        );
  const closedOrder =
    how === 'withdrawn'
      ? cancelledProposal(order, 'Withdrawn: its care plan was stopped (revoked)')
      : orderAnsweredBy(order, 'superseded', { reference: 'Procedure/other' });
  return {
    taskVersions: [version(closedTask, '3', 20), approved],
    orderVersions: [version(closedOrder as MedicationRequest, '2', 20), order],
  };
}

const pumpBegan = (minute: number, status: MedicationAdministration['status'] = 'in-progress'): PumpRecord => ({
  administration: version(
    { ...PUMP_RUNNING, id: 'ma', status, request: { reference: 'MedicationRequest/order' } },
    '1',
    minute,
  ),
});
const infusion: Procedure = {
  resourceType: 'Procedure',
  id: 'given',
  status: 'completed',
  subject: { reference: 'Patient/p1' },
  performedPeriod: { start: '2027-01-09T23:30:00Z', end: '2027-01-10T01:00:00Z' },
};

describe('a closing of an approved session that crossed the pump beginning it', () => {
  it.each(['withdrawn', 'superseded'] as const)(
    '%s after the pump recorded beginning its order: the Task and order back as they were (approved, to give)',
    (how) => {
      const crossed = crossedClosingOf({ ...closedAt20(how), administrations: [pumpBegan(10)], infusions: [], now })!;
      expect(crossed.administration.id).toBe('ma');
      expect(crossed.answeredBy).toBeUndefined();
      expect(stateOf(crossed.task.written)).toBe('approved');
      expect(crossed.task.written).toMatchObject({ status: 'ready', meta: { versionId: '3' } });
      expect(crossed.task.written.statusReason).toBeUndefined();
      expect(crossed.order.written).toMatchObject({ status: 'active', meta: { versionId: '2' } });
      expect(crossed.order.written.statusReason).toBeUndefined();
    },
  );

  it('when the infusion the pump gave it during is on record: answered by it, done and its order completed', () => {
    const crossed = crossedClosingOf({
      ...closedAt20('withdrawn'),
      administrations: [pumpBegan(10, 'completed')],
      infusions: [infusion],
      now,
    })!;
    expect(crossed.answeredBy?.reference).toBe('Procedure/given');
    expect(stateOf(crossed.task.written)).toBe('done');
    expect(crossed.task.written.output?.[0].valueReference?.reference).toBe('Procedure/given');
    expect(crossed.order.written.status).toBe('completed');
  });

  it('an administration begun before the closing and completed after it: still a crossing (its first begun version)', () => {
    const record: PumpRecord = {
      administration: version({ ...pumpBegan(0).administration, status: 'completed' }, '2', 40),
      versions: [
        version({ ...pumpBegan(0).administration, status: 'completed' }, '2', 40),
        pumpBegan(10).administration,
      ],
    };
    expect(
      crossedClosingOf({ ...closedAt20('superseded'), administrations: [record], infusions: [], now }),
    ).toBeDefined();
  });

  it('nothing to undo: the pump recorded it after the closing, never began it, or the order was closed by the EHR', () => {
    const after = crossedClosingOf({
      ...closedAt20('withdrawn'),
      administrations: [pumpBegan(30)],
      infusions: [],
      now,
    });
    expect(after).toBeUndefined();
    const notDone = crossedClosingOf({
      ...closedAt20('withdrawn'),
      administrations: [pumpBegan(10, 'not-done')],
      infusions: [],
      now,
    });
    expect(notDone).toBeUndefined();
    // The EHR cancelled the order (its own reason) before the service withdrew the Task.
    const { taskVersions, orderVersions } = closedAt20('withdrawn');
    const byEhr = [{ ...orderVersions[0], statusReason: { text: 'Cancelled by pharmacy' } }, orderVersions[1]];
    expect(
      crossedClosingOf({ taskVersions, orderVersions: byEhr, administrations: [pumpBegan(10)], infusions: [], now }),
    ).toBeUndefined();
  });

  describe('the pump’s record charted late (written after the closing, saying the pump began before it)', () => {
    const chartedLate = pumpBegan(30, 'completed');
    it.each(['withdrawn', 'superseded'] as const)(
      '%s, its infusion on record: answered by it, done and its order completed (before session 49, left closed)',
      (how) => {
        const crossed = crossedClosingOf({
          ...closedAt20(how),
          administrations: [chartedLate],
          infusions: [infusion],
          now,
        })!;
        expect(crossed).toMatchObject({ chartedLate: true, answeredBy: { reference: 'Procedure/given' } });
        expect([stateOf(crossed.task.written), crossed.order.written.status]).toEqual(['done', 'completed']);
      },
    );

    it('its infusion not on record: left closed (reopened, its order would stand active after the drug went in)', () => {
      expect(
        crossedClosingOf({ ...closedAt20('withdrawn'), administrations: [chartedLate], infusions: [], now }),
      ).toBeUndefined();
    });

    it('the pump began after the closing, by its own clock: the pump gave a cancelled order, the EHR’s to answer', () => {
      const afterClosing: PumpRecord = {
        administration: {
          ...chartedLate.administration,
          effectiveDateTime: undefined,
          effectivePeriod: { start: at(25), end: at(50) },
        },
      };
      const during = { ...infusion, performedPeriod: { start: at(20), end: at(55) } };
      expect(
        crossedClosingOf({ ...closedAt20('withdrawn'), administrations: [afterClosing], infusions: [during], now }),
      ).toBeUndefined();
    });
  });

  it('a Task the clinician rejected is not undone (only the service’s own closings)', () => {
    const { taskVersions, orderVersions } = closedAt20('withdrawn');
    const rejected = version(transition(taskVersions[1], { event: 'reject', now, reason: 'No' }), '3', 20);
    const cancelled = { ...orderVersions[0], statusReason: { text: 'No' } };
    expect(
      crossedClosingOf({
        taskVersions: [rejected, taskVersions[1]],
        orderVersions: [cancelled, orderVersions[1]],
        administrations: [pumpBegan(10)],
        infusions: [],
        now,
      }),
    ).toBeUndefined();
  });
});

describe('the cancelled orders the pump began during an infusion (judged again once it is on record)', () => {
  const record = (
    order: string,
    status: MedicationAdministration['status'],
    start: string,
  ): MedicationAdministration => ({
    ...PUMP_RUNNING,
    status,
    request: { reference: `MedicationRequest/${order}` },
    effectiveDateTime: undefined,
    effectivePeriod: { start, end: start },
  });
  const during = { procedureId: 'given', performed: { start: at(0), end: at(50) } };

  it('a cancelled order begun during it, once; not an open order, one never begun, or one begun at another time', () => {
    const orders = [
      medicationOrder('cancelled', 'cancelled', 'plan'),
      medicationOrder('open', 'active', 'plan'),
      medicationOrder('not-given', 'cancelled', 'plan'),
      medicationOrder('earlier', 'cancelled', 'plan'),
    ];
    const administrations = [
      record('cancelled', 'completed', at(10)),
      record('cancelled', 'in-progress', at(5)),
      record('open', 'completed', at(10)),
      record('not-given', 'not-done', at(10)),
      record('earlier', 'completed', '2027-01-09T10:00:00.000Z'),
    ];
    expect(cancelledOrdersGivenDuring(during, { administrations, orders })).toEqual(['cancelled']);
  });
});
