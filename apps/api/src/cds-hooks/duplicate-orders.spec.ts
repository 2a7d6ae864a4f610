import type { MedicationRequest } from '@medplum/fhirtypes';
import { orderKeyFor } from '@kc/task-states';
import { infusionDosage } from '../../../../test/fixtures/orders';
import type { CardOptions } from './cards';
import { duplicateOrderCards } from './duplicate-orders';

const options: CardOptions = { sourceLabel: 'Ketamine care plans', displays: {} };
const day = (d: number) => `2027-01-${String(d).padStart(2, '0')}T00:00:00Z`;
/** A ketamine order for days `from`-`to` of January (no window when not given). */
const order = (id: string, from?: number, to?: number, extra: Partial<MedicationRequest> = {}): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  id,
  status: 'active',
  intent: 'order',
  subject: { reference: 'Patient/p1' },
  medicationCodeableConcept: { text: 'Ketamine' },
  dosageInstruction:
    from === undefined
      ? infusionDosage(0.75, 60)
      : [{ ...infusionDosage(0.75, 60)[0], timing: { repeat: { boundsPeriod: { start: day(from), end: day(to!) } } } }],
  ...extra,
});
const approvedHere = (id: string) =>
  order(id, undefined, undefined, { identifier: [orderKeyFor('t1')], requester: { display: 'Dr Ada' } });
const cards = (draft: MedicationRequest, open: MedicationRequest[], windows?: [string, number, number][]) =>
  duplicateOrderCards({
    orders: [draft],
    open,
    sessionWindows: new Map(windows?.map(([id, a, b]) => [id, { start: day(a), end: day(b) }])),
    options,
  });

describe('ketamine already ordered for the time (order-sign)', () => {
  it('an order approved here, for its session’s window: named, with replace and remove suggested', () => {
    const [card] = cards(order('draft', 5, 6), [approvedHere('ours')], [['ours', 4, 8]]);
    expect(card.summary).toBe('Ketamine already ordered for this time: a session approved in the ketamine care plan');
    expect(card.detail).toContain(
      '- Ketamine 0.75 mg/kg/h (60 mg/h), 2027-01-04 to 2027-01-07, approved in the ketamine care plan by Dr Ada',
    );
    expect(card.suggestions?.map((s) => s.label)).toEqual([
      'Mark it as replacing the order on record',
      'Remove this ketamine order',
    ]);
  });

  it('not for another time, nor for an order it replaces (priorPrescription or basedOn), nor for itself', () => {
    expect(cards(order('draft', 10, 12), [approvedHere('ours')], [['ours', 4, 8]])).toEqual([]);
    const prior = { priorPrescription: { reference: 'MedicationRequest/ours' } };
    expect(cards(order('draft', 5, 6, prior), [approvedHere('ours')], [['ours', 4, 8]])).toEqual([]);
    const based = { basedOn: [{ reference: 'MedicationRequest/ours' }] };
    expect(cards(order('draft', 5, 6, based), [approvedHere('ours')], [['ours', 4, 8]])).toEqual([]);
    expect(cards(order('same', 5, 6), [order('same', 5, 6)])).toEqual([]);
  });

  it('an order with no window may be given any time; two on record: only removing is suggested', () => {
    const [untimed] = cards(order('draft'), [order('ehr', 20, 21)]);
    expect(untimed.summary).toBe('Ketamine already ordered');
    const [two] = cards(order('draft', 5, 6), [order('a'), order('b', 6, 7)]);
    expect(two.detail).toMatch(/^\*\*The patient already has 2 open ketamine orders for this time/);
    expect(two.suggestions?.map((s) => s.label)).toEqual(['Remove this ketamine order']);
  });
});
