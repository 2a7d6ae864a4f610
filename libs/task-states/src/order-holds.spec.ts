import type { DetectedIssue, MedicationRequest, ServiceRequest } from '@medplum/fhirtypes';
import {
  CONTRAINDICATION_HOLD,
  implicatingOrders,
  isHeldForContraindication,
  ordersToHold,
  ordersToRelease,
} from './order-holds';

const order = (id: string, status: MedicationRequest['status'] = 'active'): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  id,
  meta: { versionId: '1' },
  status,
  intent: 'order',
  subject: { reference: 'Patient/p1' },
});
const issue = (id: string, implicated: string[], mitigated = false): DetectedIssue => ({
  resourceType: 'DetectedIssue',
  id,
  status: mitigated ? 'final' : 'preliminary',
  code: { coding: [{ code: 'pregnancy', display: 'Pregnancy' }], text: 'Pregnancy' },
  implicated: implicated.map((reference) => ({ reference })),
  mitigation: mitigated ? [{ action: { text: 'Clinician override: test negative' } }] : undefined,
});

describe('orders held for a contraindication found after approval', () => {
  it('holds only active orders, naming the issue in the reason an EHR reads', () => {
    const holds = ordersToHold(
      [order('a'), order('b', 'completed'), order('c', 'on-hold'), order('d', 'cancelled')],
      [issue('i1', ['CarePlan/cp'])],
    );
    expect(holds.map((h) => h.read.id)).toEqual(['a']);
    const held = holds[0].held as MedicationRequest;
    expect(held.status).toBe('on-hold');
    expect(held.statusReason?.coding).toEqual([CONTRAINDICATION_HOLD]);
    expect(held.statusReason?.text).toContain('Pregnancy (DetectedIssue/i1)');
    expect(isHeldForContraindication(held)).toBe(true);
  });

  it('holds nothing without an unresolved issue', () => {
    expect(ordersToHold([order('a')], [])).toEqual([]);
  });

  it('a ServiceRequest (no statusReason in R4) carries the reason in the standard request-statusReason extension', () => {
    const service: ServiceRequest = {
      resourceType: 'ServiceRequest',
      id: 's',
      status: 'active',
      intent: 'order',
      subject: {},
    };
    const [{ held }] = ordersToHold([service], [issue('i1', ['CarePlan/cp'])]);
    expect(held.status).toBe('on-hold');
    expect(held.extension?.[0].url).toBe('http://hl7.org/fhir/StructureDefinition/request-statusReason');
    expect(isHeldForContraindication(held)).toBe(true);
    const [released] = ordersToRelease({ orders: [held], stillUnresolved: [] });
    expect(released.held).toEqual({ ...service });
  });

  it('an override releases what this service held, back to active with no hold reason', () => {
    const [{ held }] = ordersToHold([order('a')], [issue('i1', ['CarePlan/cp'])]);
    const [released] = ordersToRelease({ orders: [held], stillUnresolved: [] });
    expect(released.held).toEqual(order('a'));
  });

  it('an order another unresolved issue also holds stays held', () => {
    const [{ held }] = ordersToHold([order('a')], [issue('i1', ['CarePlan/cp', 'MedicationRequest/a'])]);
    const still = [issue('i2', ['CarePlan/cp', 'MedicationRequest/a'])];
    expect(ordersToRelease({ orders: [held], stillUnresolved: still })).toEqual([]);
    // ...but not one the other issue does not name.
    const [{ held: other }] = ordersToHold([order('b')], [issue('i1', ['CarePlan/cp'])]);
    expect(ordersToRelease({ orders: [other], stillUnresolved: still }).map((r) => r.read.id)).toEqual(['b']);
  });

  it('a hold somebody else placed (no hold reason of ours) is never released', () => {
    const pharmacistHold: MedicationRequest = { ...order('a', 'on-hold'), statusReason: { text: 'awaiting stock' } };
    expect(isHeldForContraindication(pharmacistHold)).toBe(false);
    expect(ordersToRelease({ orders: [pharmacistHold, order('b')], stillUnresolved: [] })).toEqual([]);
  });

  it('the issue names the held orders once', () => {
    const updated = implicatingOrders(issue('i1', ['CarePlan/cp']), [{ reference: 'MedicationRequest/a' }]);
    expect(updated?.implicated?.map((r) => r.reference)).toEqual(['CarePlan/cp', 'MedicationRequest/a']);
    expect(implicatingOrders(updated!, [{ reference: 'MedicationRequest/a' }])).toBeUndefined();
  });
});
