import type { CarePlan, MedicationAdministration, MedicationRequest, Procedure, Task } from '@medplum/fhirtypes';
import type { InfusionDefinition } from './infusion-history';
import {
  isUnlinkedInfusion,
  linkedToPlan,
  namesNoneOf,
  ordersNamingNoPlan,
  ordersPlans,
  planOfUnlinkedInfusion,
} from './unlinked-infusions';

const IV = { system: 'http://snomed.info/sct', code: '14152002' };
const infusion = (canonical: string): InfusionDefinition => ({
  codes: [IV],
  canonicals: [canonical],
  drug: [],
  lengthMs: 0,
});
const plan = (id: string, start = '2027-01-01'): CarePlan => ({
  resourceType: 'CarePlan',
  id,
  status: 'active',
  intent: 'plan',
  subject: { reference: 'Patient/p1' },
  period: { start },
});
const procedure = (extra: Partial<Procedure> = {}): Procedure => ({
  resourceType: 'Procedure',
  id: 'proc',
  status: 'completed',
  code: { coding: [IV] },
  subject: { reference: 'Patient/p1' },
  performedPeriod: { start: '2027-01-04T09:00:00Z', end: '2027-01-04T10:00:00Z' },
  ...extra,
});
const orderOf = (id: string, carePlanId: string): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  id,
  status: 'active',
  intent: 'order',
  subject: { reference: 'Patient/p1' },
  basedOn: [{ reference: `CarePlan/${carePlanId}` }],
});
const given = (id: string, orderId: string, at = '2027-01-04T09:30:00Z'): MedicationAdministration => ({
  resourceType: 'MedicationAdministration',
  id,
  status: 'completed',
  subject: { reference: 'Patient/p1' },
  request: { reference: `MedicationRequest/${orderId}` },
  effectiveDateTime: at,
});
const candidates = [
  { carePlan: plan('a'), infusion: infusion('https://x/ActivityDefinition/a') },
  { carePlan: plan('b'), infusion: infusion('https://x/ActivityDefinition/b') },
];

describe('the plan of an infusion an EHR recorded naming none', () => {
  it('is an infusion naming no plan: completed, of a patient, with a time', () => {
    expect(isUnlinkedInfusion(procedure())).toBe(true);
    expect(isUnlinkedInfusion(procedure({ basedOn: [{ reference: 'CarePlan/a' }] }))).toBe(false);
    expect(isUnlinkedInfusion(procedure({ status: 'in-progress' }))).toBe(false);
    expect(isUnlinkedInfusion(procedure({ performedPeriod: undefined }))).toBe(false);
  });

  it('the plan whose infusion it instantiates', () => {
    const found = planOfUnlinkedInfusion({
      procedure: procedure({ instantiatesCanonical: ['https://x/ActivityDefinition/b'] }),
      candidates,
    });
    expect('carePlan' in found && found.carePlan.id).toBe('b');
  });

  it('the plan whose order the pump gave during it; not one given outside its time', () => {
    const found = planOfUnlinkedInfusion({
      procedure: procedure(),
      candidates,
      administrations: [given('ma1', 'o-b'), given('ma2', 'o-a', '2027-01-05T09:30:00Z')],
      planOfOrder: ordersPlans([orderOf('o-a', 'a'), orderOf('o-b', 'b')], []),
    });
    expect(found).toMatchObject({ carePlan: { id: 'b' }, source: 'MedicationAdministration/ma1' });
  });

  it('the plan whose session the EHR completed naming it (Task.output); not when the pump’s record names another plan', () => {
    const session = (id: string, carePlanId: string, output = 'Procedure/proc'): Task => ({
      resourceType: 'Task',
      id,
      status: 'completed',
      intent: 'order',
      basedOn: [{ reference: `CarePlan/${carePlanId}` }],
      focus: { reference: `MedicationRequest/o-${carePlanId}` },
      output: [{ type: { text: 'Infusion given' }, valueReference: { reference: output } }],
    });
    expect(
      planOfUnlinkedInfusion({
        procedure: procedure(),
        candidates,
        tasks: [session('t-a', 'a', 'Procedure/other'), session('t-b', 'b')],
      }),
    ).toMatchObject({ carePlan: { id: 'b' }, source: 'Task/t-b' });
    // A check's Task naming it is not its session.
    expect(
      planOfUnlinkedInfusion({
        procedure: procedure(),
        candidates,
        tasks: [{ ...session('t-b', 'b'), focus: { reference: 'ServiceRequest/check' } }],
      }),
    ).toHaveProperty('why');
    const pumpSaysA = {
      administrations: [given('ma1', 'o-a')],
      planOfOrder: ordersPlans([orderOf('o-a', 'a')], []),
    };
    const twoPlans = planOfUnlinkedInfusion({
      procedure: procedure(),
      candidates,
      ...pumpSaysA,
      tasks: [session('t-b', 'b')],
    });
    expect('why' in twoPlans && twoPlans.why).toMatch(/more than one/);
    expect(
      planOfUnlinkedInfusion({ procedure: procedure(), candidates, ...pumpSaysA, tasks: [session('t-a', 'a')] }),
    ).toMatchObject({ carePlan: { id: 'a' }, source: 'MedicationAdministration/ma1' });
  });

  it('nothing by its code alone, nor when two plans are tied to it, nor by a plan begun after it', () => {
    expect(planOfUnlinkedInfusion({ procedure: procedure(), candidates })).toHaveProperty('why');
    expect(
      planOfUnlinkedInfusion({
        procedure: procedure(),
        candidates,
        administrations: [given('ma1', 'o-a'), given('ma2', 'o-b')],
        planOfOrder: ordersPlans([orderOf('o-a', 'a'), orderOf('o-b', 'b')], []),
      }),
    ).toHaveProperty('why', expect.stringMatching(/more than one/));
    expect(
      planOfUnlinkedInfusion({
        procedure: procedure({ instantiatesCanonical: ['https://x/ActivityDefinition/a'] }),
        candidates: [{ carePlan: plan('a', '2027-02-01'), infusion: infusion('https://x/ActivityDefinition/a') }],
      }),
    ).toHaveProperty('why');
  });

  it('untied, the plans it may be a session of by its code alone: open ones begun by its end; those it names, when it names more than one', () => {
    const other = {
      ...infusion('https://x/ActivityDefinition/c'),
      codes: [{ system: 'http://snomed.info/sct', code: '1' }],
    };
    const mixed = [
      ...candidates,
      { carePlan: plan('later', '2027-02-01'), infusion: infusion('https://x/ActivityDefinition/a') },
      {
        carePlan: { ...plan('over'), status: 'completed' as const },
        infusion: infusion('https://x/ActivityDefinition/a'),
      },
      { carePlan: plan('other-drug'), infusion: other },
    ];
    expect(planOfUnlinkedInfusion({ procedure: procedure(), candidates: mixed })).toMatchObject({
      mayBe: ['CarePlan/a', 'CarePlan/b'],
    });
    const twoNamed = [...candidates, { carePlan: plan('a2'), infusion: infusion('https://x/ActivityDefinition/a') }];
    expect(
      planOfUnlinkedInfusion({
        procedure: procedure({ instantiatesCanonical: ['https://x/ActivityDefinition/a'] }),
        candidates: twoNamed,
      }),
    ).toMatchObject({ mayBe: ['CarePlan/a', 'CarePlan/a2'] });
    expect(planOfUnlinkedInfusion({ procedure: procedure(), candidates: [] })).toMatchObject({ mayBe: [] });
  });

  it('the pump’s record of a plan’s order ties it to that plan even before the plan’s start (a session the EHR moved earlier)', () => {
    const found = planOfUnlinkedInfusion({
      procedure: procedure(),
      candidates: [{ carePlan: plan('a', '2027-02-01'), infusion: infusion('https://x/ActivityDefinition/a') }],
      administrations: [given('ma1', 'o-a')],
      planOfOrder: ordersPlans([orderOf('o-a', 'a')], []),
    });
    expect(found).toMatchObject({ carePlan: { id: 'a' }, source: 'MedicationAdministration/ma1' });
  });

  it('the pump’s record ties it to a plan stopped since; its protocol named alone, only to an open plan', () => {
    const stopped = [
      { carePlan: { ...plan('a'), status: 'revoked' as const }, infusion: infusion('https://x/ActivityDefinition/a') },
    ];
    expect(
      planOfUnlinkedInfusion({
        procedure: procedure(),
        candidates: stopped,
        administrations: [given('ma1', 'o-a')],
        planOfOrder: ordersPlans([orderOf('o-a', 'a')], []),
      }),
    ).toMatchObject({ carePlan: { id: 'a' } });
    expect(
      planOfUnlinkedInfusion({
        procedure: procedure({ instantiatesCanonical: ['https://x/ActivityDefinition/a'] }),
        candidates: stopped,
      }),
    ).toHaveProperty('why');
  });

  it('an order’s plan: the one it is based on, else that of the Task approved on it (the EHR’s own order)', () => {
    const ehrOrder = { ...orderOf('o-ehr', 'x'), basedOn: undefined };
    const approvedOnIt = {
      resourceType: 'Task' as const,
      status: 'ready' as const,
      intent: 'order' as const,
      basedOn: [{ reference: 'CarePlan/b' }, { reference: 'MedicationRequest/o-ehr' }],
    };
    const replacement = { ...ehrOrder, id: 'o-ehr2', priorPrescription: { reference: 'MedicationRequest/o-ehr' } };
    expect([...ordersPlans([orderOf('o-a', 'a'), ehrOrder, replacement], [approvedOnIt])]).toEqual([
      ['MedicationRequest/o-a', 'CarePlan/a'],
      ['MedicationRequest/o-ehr', 'CarePlan/b'],
      ['MedicationRequest/o-ehr2', 'CarePlan/b'],
    ]);
    expect(ordersNamingNoPlan([orderOf('o-a', 'a'), ehrOrder, replacement])).toEqual([
      'MedicationRequest/o-ehr',
      'MedicationRequest/o-ehr2',
    ]);
    // Replaced twice: through the patient's orders, at any depth.
    const again = { ...ehrOrder, id: 'o-ehr3', priorPrescription: { reference: 'MedicationRequest/o-ehr2' } };
    expect(ordersPlans([again], [approvedOnIt], [ehrOrder, replacement, again]).get('MedicationRequest/o-ehr3')).toBe(
      'CarePlan/b',
    );
    expect(ordersPlans([again], [approvedOnIt]).get('MedicationRequest/o-ehr3')).toBeUndefined();
  });

  it('linked: its plan added to basedOn first, whatever else it is based on kept', () => {
    const linked = linkedToPlan(procedure({ basedOn: [{ reference: 'ServiceRequest/s1' }] }), plan('a'));
    expect(linked.basedOn).toEqual([{ reference: 'CarePlan/a' }, { reference: 'ServiceRequest/s1' }]);
  });

  it('based on the EHR’s own plans alone it names none of the patient’s plans of a protocol, and is tied as one naming none', () => {
    const episode = { reference: 'CarePlan/ehr-episode' };
    expect(namesNoneOf(procedure({ basedOn: [episode] }), [plan('a'), plan('b')])).toBe(true);
    expect(namesNoneOf(procedure({ basedOn: [episode, { reference: 'CarePlan/b' }] }), [plan('a'), plan('b')])).toBe(
      false,
    );
    expect(namesNoneOf(procedure({ basedOn: [episode], status: 'in-progress' }), [plan('a')])).toBe(false);
    const found = planOfUnlinkedInfusion({
      procedure: procedure({ basedOn: [episode], instantiatesCanonical: ['https://x/ActivityDefinition/b'] }),
      candidates,
    });
    expect('carePlan' in found && found.carePlan.id).toBe('b');
    const untied = planOfUnlinkedInfusion({ procedure: procedure({ basedOn: [episode] }), candidates });
    expect('why' in untied && untied.why).toMatch(/^it names no care plan of a protocol \(only the EHR’s own\)/);
    expect(untied).toHaveProperty('mayBe', ['CarePlan/a', 'CarePlan/b']);
  });
});
