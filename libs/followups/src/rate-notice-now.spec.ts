import type { MedicationAdministration, MedicationRequest } from '@medplum/fhirtypes';
import { doseChangeReason, orderKeyFor } from '@kc/task-states';
import { infusionDosage, ucum } from '../../../test/fixtures/orders';
import { medicationOrder, PUMP_RUNNING } from '../../../test/fixtures/plans';
import { catalogActivity, weighed } from '../../../test/fixtures/protocol-data';
import { rateNoticeSinceApproval } from './late-administrations';
import { rateNoticeNow } from './rate-notice-now';

const lowDose = catalogActivity('ketamine-low-dose-infusion');
const pumped = (orderId: string, status: MedicationAdministration['status'], mgPerHour = 60) => ({
  ...PUMP_RUNNING,
  id: `ma-${orderId}-${status}`,
  status,
  request: { reference: `MedicationRequest/${orderId}` },
  dosage: { rateQuantity: ucum(mgPerHour, 'mg/h') },
});
/** The next session's order approved at 1 mg/kg/h, noted since: the pump gave the last at 0.75 mg/kg/h. */
const noted: MedicationRequest = rateNoticeSinceApproval({
  order: {
    ...medicationOrder('next-order', 'active'),
    identifier: [orderKeyFor('t-next')],
    dosageInstruction: infusionDosage(1, 80),
  },
  activity: lowDose,
  given: {
    order: { ...medicationOrder('o1', 'completed'), dosageInstruction: infusionDosage(1, 80) },
    administrations: [pumped('o1', 'completed')],
  },
  variables: weighed(80, '2027-01-01T08:00:00Z'),
  now: new Date('2027-01-05T00:00:00Z'),
})!.noted;

describe('an approved order’s rate notice as it is now: told while it stands, told dealt with once it ended', () => {
  it('an open order, the pump not begun, giving another rate than proposed: standing, with both rates', () => {
    expect(rateNoticeNow(noted, [])).toEqual({
      order: noted,
      task: 't-next',
      standing: { proposed: 0.75, ordered: 1, unit: 'mg/kg/h' },
    });
    // Another order's records do not begin this one's session.
    expect(rateNoticeNow(noted, [pumped('other', 'in-progress')])).toMatchObject({ standing: { proposed: 0.75 } });
  });

  it('begun at the pump, given, its dose changed or cancelled: ended, saying how', () => {
    const ending = (order: MedicationRequest, given: MedicationAdministration[] = []) => {
      const now = rateNoticeNow(order, given);
      return now && 'ended' in now ? now.ended : undefined;
    };
    expect(ending(noted, [pumped('next-order', 'in-progress')])).toEqual({
      proposed: 0.75,
      unit: 'mg/kg/h',
      ending: 'the session was begun at the pump',
    });
    // Not done at the pump is no beginning: the notice stands.
    expect(rateNoticeNow(noted, [pumped('next-order', 'not-done')])).toMatchObject({ standing: { proposed: 0.75 } });
    expect(ending({ ...noted, status: 'completed' })?.ending).toBe('the session was given');
    expect(
      ending({ ...noted, status: 'cancelled', statusReason: { text: doseChangeReason('0.75 mg/kg/h (60 mg/h)') } })
        ?.ending,
    ).toBe('its dose was changed');
    expect(ending({ ...noted, status: 'stopped' })?.ending).toBe('the order is no longer to be given (stopped)');
  });

  it('no notice, or not a session’s order written here: nothing to tell', () => {
    const { note: _note, ...unnoted } = noted;
    expect(rateNoticeNow(unnoted, [])).toBeUndefined();
    expect(rateNoticeNow({ ...noted, identifier: undefined }, [])).toBeUndefined();
  });
});
