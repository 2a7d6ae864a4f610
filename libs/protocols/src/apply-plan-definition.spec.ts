import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { validateResource } from '@medplum/core';
import type { ActivityDefinition, PlanDefinition, Resource, Task } from '@medplum/fhirtypes';
import {
  activeCondition,
  bloodPressure,
  bodyWeight,
  FIBROMYALGIA,
  PREGNANCY,
  PSYCHOSIS,
  searchset,
} from '../../../test/fixtures/patient-data';
import { appliedEntries, applyPlanDefinition, type ApplyInput } from './apply-plan-definition';
import { ProtocolCatalog } from './catalog';
import { PROTOCOL_WINDOW_EXTENSION } from './canonical';
import { UnsupportedElementError } from './unsupported';
import { cqlRecommendationPlan, dischargeInstructionsPlan, sendMessageActivity } from './fixtures/cpg-examples';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', 'fhir-profiles'));
const startDate = new Date('2026-12-01T08:00:00.000Z');
const now = new Date('2026-11-22T12:00:00.000Z');
const patient = { resourceType: 'Patient' as const, id: 'p1', birthDate: '1980-04-02' };

type History = { weight?: number; bp?: [number, number]; conditions?: (readonly [string, string])[] };

function data(history: History) {
  const withId = <T extends Resource>(r: T, id: string): T => ({ ...r, id });
  return {
    bodyWeight: history.weight === undefined ? searchset() : searchset(withId(bodyWeight(history.weight), 'w1')),
    bloodPressure: history.bp ? searchset(withId(bloodPressure(...history.bp), 'bp1')) : searchset(),
    pregnancyStatus: searchset(),
    conditions: searchset(
      ...(history.conditions ?? []).map(([code, display], i) => withId(activeCondition(code, display), `c${i}`)),
    ),
  };
}

function apply(planId: string, history: History, extra: Partial<ApplyInput> = {}) {
  return applyPlanDefinition({
    plan: catalog.findPlanDefinition(planId)!,
    definitions: catalog,
    patient,
    startDate,
    now,
    patientData: data(history),
    ...extra,
  });
}

const actionOf = (r: Resource) =>
  (r as { extension?: { url: string; valueString?: string }[] }).extension?.find((e) =>
    e.url.endsWith('protocol-action'),
  )?.valueString;

/** Every resource the engine writes must be valid R4: an invalid one fails here. */
function expectValid(result: ReturnType<typeof apply>) {
  for (const entry of appliedEntries(result)) expect(() => validateResource(entry.resource)).not.toThrow();
}

describe('applyPlanDefinition with the shipped protocols', () => {
  it('low-dose series, eligible 80 kg patient: instructions the day before the first session, which is 1-14 days out at 40 mg/h', () => {
    const result = apply('ketamine-low-dose-series', { weight: 80, bp: [128, 82], conditions: [FIBROMYALGIA] });
    expectValid(result);
    expect(result.eligible).toBe(true);
    const byAction: Record<string, Task> = Object.fromEntries(
      result.tasks.map((t) => [actionOf(t.resource) ?? '', t.resource]),
    );
    expect(Object.keys(byAction).sort()).toEqual(['infusion-session', 'patient-instructions']);
    expect(byAction['infusion-session'].restriction?.period).toEqual({
      start: '2026-12-02T08:00:00.000Z',
      end: '2026-12-15T08:00:00.000Z',
    });
    expect(byAction['patient-instructions'].restriction?.period).toEqual({
      start: '2026-12-01T08:00:00.000Z',
      end: '2026-12-02T08:00:00.000Z',
    });
    // Awaiting approval: nothing an EHR may act on.
    expect(result.tasks.every((t) => t.resource.status === 'draft' && t.resource.intent === 'plan')).toBe(true);
    const medication = result.requests.find(
      (r: { resource: Resource }) => r.resource.resourceType === 'MedicationRequest',
    )!;
    expect(medication.resource).toMatchObject({
      status: 'draft',
      intent: 'proposal',
      basedOn: [{ reference: result.carePlan.fullUrl }],
    });
    expect(
      (medication.resource as { dosageInstruction: { doseAndRate: { rateQuantity: { value: number } }[] }[] })
        .dosageInstruction[0].doseAndRate[0].rateQuantity.value,
    ).toBe(40);
    expect(byAction['infusion-session'].focus?.reference).toBe(medication.fullUrl);
    expect(byAction['infusion-session'].basedOn?.map((r: { reference?: string }) => r.reference)).toEqual([
      result.carePlan.fullUrl,
      result.requestGroup.fullUrl,
    ]);
    // Each activity once.
    expect(result.carePlan.resource.activity?.map((a) => a.reference?.reference).sort()).toEqual(
      result.tasks.map((t) => t.fullUrl).sort(),
    );
  });

  it.each([
    ['pregnancy', { weight: 64, bp: [110, 70], conditions: [PREGNANCY] }, 'Condition/c0'],
    ['uncontrolled-hypertension', { weight: 70, bp: [195, 115] }, 'Observation/bp1'],
    ['psychosis', { weight: 70, bp: [120, 80], conditions: [PSYCHOSIS] }, 'Condition/c0'],
  ] as const)(
    'contraindicated (%s): only a DetectedIssue with its evidence, no request and no task',
    (code, history, evidence) => {
      const result = apply('ketamine-low-dose-series', history as History);
      expectValid(result);
      expect(result.eligible).toBe(false);
      expect(result.requests).toHaveLength(0);
      expect(result.tasks).toHaveLength(0);
      expect(result.detectedIssues.map((i) => i.resource.code?.coding?.[0].code)).toEqual([code]);
      expect(result.detectedIssues[0].resource.evidence?.[0].detail).toEqual([{ reference: evidence }]);
      expect(result.detectedIssues[0].resource.implicated).toEqual([{ reference: result.carePlan.fullUrl }]);
      expect(result.outcome.issue.some((i) => i.code === 'business-rule' && i.details?.coding?.[0].code === code)).toBe(
        true,
      );
    },
  );

  it('a contraindication a clinician overrode lets its actions go ahead, with no new DetectedIssue', () => {
    const result = apply(
      'ketamine-low-dose-series',
      { weight: 64, bp: [110, 70], conditions: [PREGNANCY] },
      { overridden: new Set(['pregnancy']) },
    );
    expect(result.eligible).toBe(true);
    expect(result.detectedIssues).toHaveLength(0);
    expect(result.tasks).toHaveLength(2);
  });

  it('no weight on record: the proposal has no dose and the outcome asks for one; no BP on record is said, not blocked', () => {
    const result = apply('ketamine-low-dose-series', {});
    expect(result.eligible).toBe(true);
    const texts = result.outcome.issue.map((i) => i.details?.text ?? '');
    expect(texts.some((t) => /body weight/.test(t) && /clinician must set/.test(t))).toBe(true);
    expect(texts.some((t) => /No Blood pressure panel on record/.test(t))).toBe(true);
  });

  it('keeps the protocol window on each task, and never writes a window that ends before the task is created', () => {
    const past = apply('ketamine-low-dose-series', { weight: 80 }, { startDate: new Date('2026-10-01T00:00:00Z') });
    for (const task of past.tasks) {
      expect(Date.parse(task.resource.restriction!.period!.end!)).toBeGreaterThan(now.getTime());
      expect(Date.parse(task.resource.restriction!.period!.start!)).toBeLessThan(
        Date.parse(task.resource.restriction!.period!.end!),
      );
      expect(task.resource.extension?.find((e) => e.url === PROTOCOL_WINDOW_EXTENSION)?.valuePeriod).toBeDefined();
    }
  });
});

/** A plan an EHR might post: the FHIR spec's shapes, nothing of this service's. */
const ehrActivities: ActivityDefinition[] = [
  {
    resourceType: 'ActivityDefinition',
    id: 'referral',
    url: 'http://ehr.example/ActivityDefinition/referral',
    version: '1',
    status: 'active',
    kind: 'ServiceRequest',
    code: { text: 'Physiotherapy referral' },
  },
  {
    resourceType: 'ActivityDefinition',
    id: 'visit',
    url: 'http://ehr.example/ActivityDefinition/visit',
    status: 'active',
    kind: 'Appointment',
    title: 'Follow-up visit',
  },
  {
    resourceType: 'ActivityDefinition',
    id: 'call',
    url: 'http://ehr.example/ActivityDefinition/call',
    status: 'active',
    kind: 'Task',
    title: 'Phone the patient',
  },
];
const nested: PlanDefinition = {
  resourceType: 'PlanDefinition',
  id: 'nested',
  url: 'http://ehr.example/PlanDefinition/nested',
  status: 'active',
  action: [
    {
      id: 'nested-call',
      title: 'Nested call',
      definitionCanonical: 'http://ehr.example/ActivityDefinition/call',
      timingDuration: { value: 2, code: 'wk' },
    },
  ],
};
function ehrPlan(overrides: Partial<PlanDefinition['action']> = []): PlanDefinition {
  return {
    resourceType: 'PlanDefinition',
    id: 'ehr-plan',
    url: 'http://ehr.example/PlanDefinition/ehr-plan',
    version: '3',
    status: 'active',
    goal: [
      {
        id: 'g1',
        description: { text: 'Pain below 4/10' },
        target: [{ measure: { text: 'NRS' }, detailQuantity: { value: 4 }, due: { value: 3, code: 'mo' } }],
      },
    ],
    action: [
      {
        id: 'group',
        title: 'Group',
        selectionBehavior: 'all',
        groupingBehavior: 'logical-group',
        requiredBehavior: 'must',
        precheckBehavior: 'yes',
        cardinalityBehavior: 'single',
        action: [
          {
            id: 'referral',
            definitionCanonical: 'http://ehr.example/ActivityDefinition/referral|1',
            timingTiming: { repeat: { count: 8, frequency: 1, period: 1, periodUnit: 'mo' } },
            participant: [{ type: 'practitioner', role: { text: 'physiotherapist' } }],
          },
          {
            id: 'visit',
            definitionCanonical: 'http://ehr.example/ActivityDefinition/visit',
            relatedAction: [
              { actionId: 'referral', relationship: 'after-start', offsetDuration: { value: 1, code: 'mo' } },
            ],
          },
          {
            id: 'only-over-90',
            title: 'Geriatric review',
            definitionCanonical: 'http://ehr.example/ActivityDefinition/call',
            condition: [
              {
                kind: 'applicability',
                expression: { language: 'text/fhirpath', expression: '%patient.birthDate < @1936-01-01' },
              },
            ],
          },
          { id: 'plan-in-plan', definitionCanonical: 'http://ehr.example/PlanDefinition/nested' },
          { id: 'on-admission', title: 'On admission', trigger: [{ type: 'named-event', name: 'admission' }] },
          ...(overrides as NonNullable<PlanDefinition['action']>),
        ],
      },
    ],
  };
}
const ehrResolver = new ProtocolCatalog([...ehrActivities, nested]);
const applyEhr = (
  plan: PlanDefinition,
  context: ApplyInput['context'] = { practitioner: { reference: 'Practitioner/dr1' } },
) => applyPlanDefinition({ plan, definitions: ehrResolver, patient, startDate, now, patientData: {}, context });

describe('applyPlanDefinition with any R4 PlanDefinition', () => {
  it('ServiceRequest with a monthly x 8 schedule, Appointment a calendar month later, nested PlanDefinition, goal, behaviours', () => {
    const result = applyEhr(ehrPlan());
    expectValid(result);
    const referral = result.requests.find((r) => r.resource.resourceType === 'ServiceRequest')!.resource as {
      occurrenceTiming?: unknown;
      performerType?: unknown;
      status: string;
      intent: string;
    };
    expect(referral).toMatchObject({
      status: 'draft',
      intent: 'proposal',
      occurrenceTiming: { repeat: { count: 8, periodUnit: 'mo' } },
      performerType: { text: 'physiotherapist' },
    });
    const byAction: Record<string, Task> = Object.fromEntries(
      result.tasks.map((t) => [actionOf(t.resource) ?? '', t.resource]),
    );
    expect(byAction.referral.restriction?.period).toEqual({
      start: '2026-12-01T08:00:00.000Z',
      end: '2027-08-01T08:00:00.000Z',
    });
    expect(byAction.referral.owner).toEqual({ reference: 'Practitioner/dr1' });
    expect(byAction.visit.restriction?.period).toEqual({
      start: '2027-01-01T08:00:00.000Z',
      end: '2027-01-02T08:00:00.000Z',
    });
    expect(result.requests.some((r) => r.resource.resourceType === 'Appointment')).toBe(true);
    expect(byAction['nested-call'].restriction?.period?.end).toBe('2026-12-15T08:00:00.000Z');
    expect(byAction['only-over-90']).toBeUndefined();
    expect(result.outcome.issue.some((i) => /Geriatric review: not applicable/.test(i.details?.text ?? ''))).toBe(true);
    const group = result.requestGroup.resource.action![0];
    expect(group).toMatchObject({
      selectionBehavior: 'all',
      groupingBehavior: 'logical-group',
      requiredBehavior: 'must',
      precheckBehavior: 'yes',
      cardinalityBehavior: 'single',
    });
    expect(group.action!.map((a) => a.id)).toEqual(['referral', 'visit', 'plan-in-plan', 'on-admission']);
    expect(group.action!.find((a) => a.id === 'on-admission')!.resource?.reference).toBe(
      byAction['on-admission'] && result.tasks.find((t) => t.resource === byAction['on-admission'])!.fullUrl,
    );
    expect(
      result.outcome.issue.some((i) =>
        /On admission: its trigger \(admission\) is not evaluated/.test(i.details?.text ?? ''),
      ),
    ).toBe(true);
    expect(result.goals[0].resource).toMatchObject({
      lifecycleStatus: 'proposed',
      description: { text: 'Pain below 4/10' },
      target: [{ dueDate: '2027-03-01' }],
    });
    expect(result.carePlan.resource.goal).toEqual([{ reference: result.goals[0].fullUrl }]);
  });

  it.each([
    [
      'text/cql without ELM',
      {
        id: 'cql',
        condition: [{ kind: 'applicability', expression: { language: 'text/cql', expression: 'InDemographic' } }],
      },
      'PlanDefinition/ehr-plan.action[0].action[5].condition[0].expression.language',
    ],
    [
      'an unknown definition',
      { id: 'missing', definitionCanonical: 'http://ehr.example/ActivityDefinition/none' },
      'PlanDefinition/ehr-plan.action[0].action[5].definitionCanonical',
    ],
    [
      'a unit that is not time',
      { id: 'kg', timingDuration: { value: 2, code: 'kg' } },
      'PlanDefinition/ehr-plan.action[0].action[5].timingDuration',
    ],
  ])('refuses %s, naming the element', (_name, action, element) => {
    let error: unknown;
    try {
      applyEhr(ehrPlan([action as never]));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UnsupportedElementError);
    expect((error as UnsupportedElementError).element).toBe(element);
  });

  it('binds the setting the caller named as %setting', () => {
    const plan = ehrPlan([
      {
        id: 'outpatient-only',
        title: 'Outpatient only',
        definitionCanonical: 'http://ehr.example/ActivityDefinition/call',
        condition: [
          {
            kind: 'applicability',
            expression: { language: 'text/fhirpath', expression: "%setting.coding.code = 'AMB'" },
          },
        ],
      },
    ] as never);
    const run = (code: string) => applyEhr(plan, { setting: { coding: [{ code }] } });
    expect(run('AMB').tasks.some((t) => actionOf(t.resource) === 'outpatient-only')).toBe(true);
    expect(run('IMP').tasks.some((t) => actionOf(t.resource) === 'outpatient-only')).toBe(false);
  });

  it('binds %subject, %patient, %context and %resource', () => {
    const plan = ehrPlan([
      {
        id: 'vars',
        title: 'Vars',
        definitionCanonical: 'http://ehr.example/ActivityDefinition/call',
        condition: [
          {
            kind: 'applicability',
            expression: {
              language: 'text/fhirpath',
              expression:
                "%subject.id = 'p1' and %patient.id = 'p1' and %context.id = 'p1' and %resource.id = 'ehr-plan'",
            },
          },
        ],
      },
    ] as never);
    expect(applyEhr(plan).tasks.some((t) => actionOf(t.resource) === 'vars')).toBe(true);
  });
});

describe('applyPlanDefinition with public example shapes', () => {
  const resolver = new ProtocolCatalog([sendMessageActivity]);
  const named = { ...patient, name: [{ given: ['Ada'], family: 'Lovelace' }] };

  it('CPG discharge instructions: an action dynamicValue fills the CommunicationRequest from %subject', () => {
    const result = applyPlanDefinition({
      plan: dischargeInstructionsPlan,
      definitions: resolver,
      patient: named,
      startDate,
      now,
      patientData: {},
    });
    expectValid(result);
    expect(result.requests[0].resource).toMatchObject({
      resourceType: 'CommunicationRequest',
      status: 'draft',
      payload: [{ contentString: 'Discharge instructions for Ada' }],
    });
    expect(result.tasks[0].resource.focus?.reference).toBe(result.requests[0].fullUrl);
  });

  it('CPG recommendation with a text/cql-identifier condition: refused, naming the element', () => {
    expect(() =>
      applyPlanDefinition({
        plan: cqlRecommendationPlan,
        definitions: resolver,
        patient: named,
        startDate,
        now,
        patientData: {},
      }),
    ).toThrow(UnsupportedElementError);
    let element: string | undefined;
    try {
      applyPlanDefinition({
        plan: cqlRecommendationPlan,
        definitions: resolver,
        patient: named,
        startDate,
        now,
        patientData: {},
      });
    } catch (err) {
      element = (err as UnsupportedElementError).element;
    }
    expect(element).toBe('PlanDefinition/activity-example-orderservice-pd.action[0].condition[0].expression.language');
  });
});

describe('applyPlanDefinition: the shipped protocols in detail', () => {
  it('the first session keeps its protocol window, and the 2 mg/kg/h ceiling over 40 minutes for 80 kg', () => {
    const result = apply('ketamine-low-dose-series', { weight: 80, bp: [128, 82], conditions: [FIBROMYALGIA] });
    const session = result.tasks.find((t) => actionOf(t.resource) === 'infusion-session')!.resource;
    expect(session.extension?.find((e) => e.url === PROTOCOL_WINDOW_EXTENSION)?.valuePeriod).toEqual(
      session.restriction?.period,
    );
    const infusion = result.requests.find((r) => r.resource.resourceType === 'MedicationRequest')!.resource;
    expect(
      infusion.resourceType === 'MedicationRequest' && infusion.dosageInstruction?.[0].maxDosePerAdministration?.value,
    ).toBeCloseTo(106.7, 1);
  });

  it('high-dose protocol starts at 1 mg/kg/h', () => {
    const result = apply('ketamine-high-dose-as-needed', { weight: 62, bp: [120, 80] });
    const infusion = result.requests.find((r) => r.resource.resourceType === 'MedicationRequest')!.resource;
    expect(
      infusion.resourceType === 'MedicationRequest' &&
        infusion.dosageInstruction?.[0].doseAndRate?.[0].rateQuantity?.value,
    ).toBe(62);
  });

  it('uncontrolled hypertension and pregnancy each raise a DetectedIssue and block activation', () => {
    const result = apply('ketamine-monthly-maintenance', { weight: 70, bp: [186, 96], conditions: [PREGNANCY] });
    expect(result.eligible).toBe(false);
    expect(result.detectedIssues.map((d) => d.resource.code?.coding?.[0].code).sort()).toEqual([
      'pregnancy',
      'uncontrolled-hypertension',
    ]);
    expect(result.detectedIssues[0].resource.implicated?.[0].reference).toBe(result.carePlan.fullUrl);
    expect(result.carePlan.resource.status).toBe('draft');
  });

  it('a diastolic of 110 alone is uncontrolled', () => {
    expect(apply('ketamine-low-dose-series', { weight: 70, bp: [150, 110] }).eligible).toBe(false);
    expect(apply('ketamine-low-dose-series', { weight: 70, bp: [179, 109] }).eligible).toBe(true);
  });

  it('is deterministic: the same input gives the same keys', () => {
    const a = apply('ketamine-low-dose-series', { weight: 80 });
    const b = apply('ketamine-low-dose-series', { weight: 80 });
    expect(a.tasks.map((t) => t.resource.identifier)).toEqual(b.tasks.map((t) => t.resource.identifier));
    expect(a.carePlan.fullUrl).toBe(b.carePlan.fullUrl);
  });
});

describe('ProtocolCatalog', () => {
  it('names the kinds of Task the shipped protocols generate as their CodeSystem does', () => {
    expect(catalog.taskKinds().sort((a, b) => a.code.localeCompare(b.code))).toEqual([
      { code: 'infusion-session', display: 'Ketamine infusion session' },
      { code: 'maintenance-booster', display: 'Maintenance booster infusion' },
      { code: 'patient-instructions', display: 'Patient instructions' },
      { code: 'post-infusion-check', display: 'Post-infusion check' },
    ]);
    expect(catalog.questionnaireTaskKinds()).toEqual(['post-infusion-check']);
  });

  it('leaves out a plan with a broken reference, saying why, instead of failing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'profiles-'));
    const plan = JSON.parse(
      fs.readFileSync(
        path.join(__dirname, '..', '..', '..', 'fhir-profiles', 'PlanDefinition-ketamine-low-dose-series.json'),
        'utf8',
      ),
    ) as PlanDefinition;
    fs.writeFileSync(path.join(dir, 'PlanDefinition-x.json'), JSON.stringify(plan));
    const broken = ProtocolCatalog.fromDirectory(dir);
    expect(broken.planDefinitions()).toHaveLength(0);
    expect(broken.unavailable.map((u) => [u.file, u.id])).toEqual([
      ['PlanDefinition-x.json', 'ketamine-low-dose-series'],
    ]);
    expect(broken.problems.join('\n')).toMatch(/definitionCanonical .* is not in fhir-profiles/);
  });

  it('finds protocols by id, url and url|version', () => {
    const plan = catalog.findPlanDefinition('ketamine-low-dose-series')!;
    expect(catalog.findPlanDefinition(plan.url!)).toBe(plan);
    expect(catalog.findPlanDefinition(`${plan.url}|${plan.version}`)).toBe(plan);
  });
});
