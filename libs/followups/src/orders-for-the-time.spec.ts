import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { orderKeyFor, transition } from '@kc/task-states';
import { infusionDosage } from '../../../test/fixtures/orders';
import { planTask } from '../../../test/fixtures/plans';
import {
  ehrOrdersForSession,
  ehrOrdersNotice,
  orderedElsewhereForSession,
  orderInWords,
  ordersOfOtherPlans,
  sessionsOfOtherPlansAt,
} from './orders-for-the-time';

const KETAMINE = {
  coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '6130' }],
  text: 'Ketamine',
};
const day = (d: number) => `2027-01-${String(d).padStart(2, '0')}T09:00:00Z`;
const session: Task = { ...planTask('s1', 'cp1'), restriction: { period: { start: day(4), end: day(6) } } };
const proposal: MedicationRequest = {
  resourceType: 'MedicationRequest',
  status: 'draft',
  intent: 'proposal',
  subject: { reference: 'Patient/p1' },
  medicationCodeableConcept: KETAMINE,
};
const order = (id: string, from?: number, to?: number, extra: Partial<MedicationRequest> = {}): MedicationRequest => ({
  ...proposal,
  id,
  status: 'active',
  intent: 'order',
  dosageInstruction:
    from === undefined
      ? infusionDosage(0.5, 40)
      : [{ ...infusionDosage(0.5, 40)[0], timing: { repeat: { boundsPeriod: { start: day(from), end: day(to!) } } } }],
  ...extra,
});

describe('the drug ordered elsewhere for a session’s time', () => {
  it('an open order of the drug, timed within the session’s window, written outside this service', () => {
    const found = orderedElsewhereForSession(session, proposal, [
      order('within', 5, 5),
      order('later', 10, 11),
      order('untimed'),
      order('held', 6, 8, { status: 'on-hold' }),
      order('closed', 5, 5, { status: 'cancelled' }),
      order('ours', 5, 5, { identifier: [orderKeyFor('s0')] }),
      order('antiemetic', 5, 5, { medicationCodeableConcept: { coding: [{ code: 'ondansetron' }] } }),
    ]);
    expect(found.map((o) => o.id)).toEqual(['within', 'held']);
  });

  it('in words, with its time, who ordered it and whether it is held', () => {
    expect(orderInWords(order('held', 6, 8, { status: 'on-hold', requester: { display: 'Dr EHR' } }))).toBe(
      'Ketamine 0.5 mg/kg/h (40 mg/h), 2027-01-06 to 2027-01-08, ordered by Dr EHR (on hold)',
    );
    expect(orderInWords(order('untimed'))).toBe('Ketamine 0.5 mg/kg/h (40 mg/h), no time set, ordered');
    // In the clinic's days: a window from 02:00 UTC starts the evening before in New York.
    const late = {
      ...order('late'),
      dosageInstruction: [
        {
          ...infusionDosage(0.5, 40)[0],
          timing: { repeat: { boundsPeriod: { start: '2027-01-06T02:00:00Z', end: '2027-01-06T06:00:00Z' } } },
        },
      ],
    };
    expect(orderInWords(late, undefined, 'America/New_York')).toBe(
      'Ketamine 0.5 mg/kg/h (40 mg/h), 2027-01-05 to 2027-01-06, ordered',
    );
  });

  it('before approval: the timed ones (approving will ask) and the untimed ones (a look first), in words', () => {
    const found = ehrOrdersForSession(session.restriction?.period, proposal, [
      order('within', 5, 5, { requester: { display: 'Dr EHR' } }),
      order('untimed'),
      order('later', 10, 11),
      order('ours-untimed', undefined, undefined, { identifier: [orderKeyFor('s0')] }),
    ]);
    expect(found.timed.map((o) => o.id)).toEqual(['within']);
    expect(found.untimed.map((o) => o.id)).toEqual(['untimed']);
    expect(ehrOrdersNotice(found)).toBe(
      "Already ordered in the EHR for this session's time: Ketamine 0.5 mg/kg/h (40 mg/h), 2027-01-05, ordered by Dr EHR. " +
        "The EHR has an open order of this drug with no time set: Ketamine 0.5 mg/kg/h (40 mg/h), no time set, ordered; check it is not this session's.",
    );
    expect(ehrOrdersNotice({ timed: [], untimed: [] })).toBeUndefined();
  });
});

describe('another care plan’s sessions approved for a session’s days', () => {
  const ours = (taskId: string, carePlanId: string, extra: Partial<MedicationRequest> = {}) =>
    order(`o-${taskId}`, undefined, undefined, {
      identifier: [orderKeyFor(taskId)],
      basedOn: [{ reference: `CarePlan/${carePlanId}` }],
      ...extra,
    });
  const approvedAt = (id: string, carePlanId: string, from: number, to: number): Task => ({
    ...planTask(id, carePlanId, new Date(day(1))),
    restriction: { period: { start: day(from), end: day(to) } },
  });

  it('this service’s open orders of the drug under another plan, whose open session shares a day with the window', () => {
    const open = [
      ours('other-plan', 'cp2'),
      ours('same-plan', 'cp1'),
      ours('s1', 'cp2'),
      ours('closed', 'cp2', { status: 'completed' }),
      ours('other-drug', 'cp2', { medicationCodeableConcept: { coding: [{ system: 'x', code: 'y' }] } }),
      order('ehr', 5, 5),
      ours('later', 'cp3'),
      ours('rejected', 'cp3'),
    ];
    const candidates = ordersOfOtherPlans(session, proposal, open);
    expect(candidates.map((o) => o.id)).toEqual(['o-other-plan', 'o-later', 'o-rejected']);
    const sessions = [
      approvedAt('other-plan', 'cp2', 5, 7),
      approvedAt('later', 'cp3', 10, 12),
      { ...transition(approvedAt('rejected', 'cp3', 4, 6), { event: 'reject', now: new Date(), reason: 'no' }) },
    ];
    expect(sessionsOfOtherPlansAt(session.restriction?.period, candidates, sessions).map((s) => s.session.id)).toEqual([
      'other-plan',
    ]);
  });
});
