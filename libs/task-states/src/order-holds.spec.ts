import type { DetectedIssue, MedicationRequest, ServiceRequest, Task } from '@medplum/fhirtypes';
import {
  CONTRAINDICATION_HOLD,
  heldTask,
  holdsToRestate,
  implicatingOrders,
  isHeldForContraindication,
  keptOnHold,
  ordersToHold,
  otherIssuesNamed,
  ordersToRelease,
  releasedTask,
  withoutIssues,
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
    // In words for whoever reads the order; the issue by reference in MedicationRequest's standard field.
    expect(held.statusReason?.text).toBe(
      "Held: found after approval: Pregnancy. A clinician's override with a reason releases it.",
    );
    expect(held.detectedIssue).toEqual([{ reference: 'DetectedIssue/i1', display: 'Pregnancy' }]);
    expect(isHeldForContraindication(held)).toBe(true);
    // Held again for another issue: each issue named once.
    const again = ordersToHold([{ ...held, status: 'active' }], [issue('i1', []), issue('i2', [])])[0]
      .held as MedicationRequest;
    expect(again.detectedIssue?.map((r) => r.reference)).toEqual(['DetectedIssue/i1', 'DetectedIssue/i2']);
  });

  it('says what releases the order, as each issue holding it is (the caller says how), each once', () => {
    const releasedBy = (i: DetectedIssue) =>
      i.id === 'linked' ? 'Linking the infusion releases it.' : "A clinician's override with a reason releases it.";
    const [{ held }] = ordersToHold(
      [order('a')],
      [issue('i1', []), { ...issue('linked', []), code: { text: 'Infusion not linked' } }, issue('i2', [])],
      releasedBy,
    );
    expect((held as MedicationRequest).statusReason?.text).toBe(
      'Held: found after approval: Pregnancy; Infusion not linked; Pregnancy. Each to be resolved: ' +
        "A clinician's override with a reason releases it. Linking the infusion releases it.",
    );
  });

  it('an order held by an issue deleted since is held again by the one found now; one it implicates, or held by others, is left', () => {
    const [heldByGone] = ordersToHold([order('a')], [issue('gone', ['CarePlan/cp'])]).map((h) => h.held);
    const [alreadyNamed] = ordersToHold([order('b')], [issue('now', ['CarePlan/cp'])]).map((h) => h.held);
    const heldByOthers = { ...order('c'), status: 'on-hold' as const };
    const now = issue('now', ['CarePlan/cp', 'MedicationRequest/b']);
    const restated = holdsToRestate([heldByGone, alreadyNamed, heldByOthers], [now]);
    expect(restated.map((h) => h.read.id)).toEqual(['a']);
    const held = restated[0].held as MedicationRequest;
    expect([held.status, held.detectedIssue?.map((r) => r.reference)]).toEqual([
      'on-hold',
      ['DetectedIssue/gone', 'DetectedIssue/now'],
    ]);
    expect(isHeldForContraindication(held)).toBe(true);
    expect(holdsToRestate([heldByGone], [])).toEqual([]);
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

  it('an override releases what this service held, back to active with no hold reason (the overridden issue stays named)', () => {
    const [{ held }] = ordersToHold([order('a')], [issue('i1', ['CarePlan/cp'])]);
    const [released] = ordersToRelease({ orders: [held], stillUnresolved: [] });
    expect(released.held).toEqual({
      ...order('a'),
      detectedIssue: [{ reference: 'DetectedIssue/i1', display: 'Pregnancy' }],
    });
  });

  it('nothing is released while another contraindication on the plan is unresolved (a hold is the plan’s)', () => {
    const [{ held }] = ordersToHold([order('a')], [issue('i1', ['CarePlan/cp', 'MedicationRequest/a'])]);
    // The second issue was found while the order was already held: it names only the plan.
    const still = [issue('i2', ['CarePlan/cp'])];
    expect(ordersToRelease({ orders: [held], stillUnresolved: still })).toEqual([]);
    expect(ordersToRelease({ orders: [held], stillUnresolved: [] }).map((r) => r.read.id)).toEqual(['a']);
  });

  it('the approved Task is held with its order, and ready again on release; a Task held by others is left alone', () => {
    const task: Task = {
      resourceType: 'Task',
      id: 't',
      status: 'ready',
      intent: 'plan',
      businessStatus: { text: 'Approved' },
    };
    const [{ held }] = ordersToHold([order('a')], [issue('i1', ['CarePlan/cp'])]);
    const heldOne = heldTask(task, held);
    expect([heldOne.status, heldOne.statusReason?.coding]).toEqual(['on-hold', [CONTRAINDICATION_HOLD]]);
    expect(heldOne.businessStatus).toEqual(task.businessStatus);
    expect(releasedTask(heldOne)).toEqual(task);
    expect(
      releasedTask({ ...task, status: 'on-hold', statusReason: { text: 'EHR: patient travelling' } }),
    ).toBeUndefined();
  });

  it('a decision on a held Task keeps the hold (the release makes it ready with its order); on any other, nothing kept', () => {
    const task: Task = { resourceType: 'Task', id: 't', status: 'ready', intent: 'plan' };
    const [{ held }] = ordersToHold([order('a')], [issue('i1', ['CarePlan/cp'])]);
    const heldOne = heldTask(task, held);
    const rescheduled: Task = { ...task, businessStatus: { text: 'Rescheduled' }, restriction: { period: {} } };
    expect(keptOnHold(heldOne, rescheduled)).toEqual({
      ...rescheduled,
      status: 'on-hold',
      statusReason: heldOne.statusReason,
    });
    expect(keptOnHold(task, rescheduled)).toBe(rescheduled);
    const othersHold: Task = { ...task, status: 'on-hold', statusReason: { text: 'EHR: patient travelling' } };
    expect(keptOnHold(othersHold, rescheduled)).toBe(rescheduled);
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

  it('an order names issues besides the plan’s on record; without those deleted, it names the others only', () => {
    const named = {
      ...order('o1', 'on-hold'),
      detectedIssue: [
        { reference: 'DetectedIssue/on-record' },
        { reference: 'DetectedIssue/deleted' },
        { reference: 'DetectedIssue/ehrs' },
      ],
    };
    expect(otherIssuesNamed([named, order('o2')], [issue('on-record', [])])).toEqual([
      'DetectedIssue/deleted',
      'DetectedIssue/ehrs',
    ]);
    expect(withoutIssues(named, new Set(['DetectedIssue/deleted'])).detectedIssue).toEqual([
      { reference: 'DetectedIssue/on-record' },
      { reference: 'DetectedIssue/ehrs' },
    ]);
    const onlyDeleted = { ...order('o3', 'on-hold'), detectedIssue: [{ reference: 'DetectedIssue/deleted' }] };
    expect('detectedIssue' in withoutIssues(onlyDeleted, new Set(['DetectedIssue/deleted']))).toBe(false);
    expect(withoutIssues(named, new Set())).toBe(named);
  });
});
