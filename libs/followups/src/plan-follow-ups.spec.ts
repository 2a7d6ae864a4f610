import * as path from 'node:path';
import type { CarePlan, Procedure } from '@medplum/fhirtypes';
import { ProtocolCatalog } from '@kc/protocols';
import { bodyWeight, searchset } from '../../../test/fixtures/patient-data';
import { toInfusionCompleted } from './infusion-event';
import { followUpDataNeeds, planFollowUps } from './plan-follow-ups';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', 'fhir-profiles'));
const procedure: Procedure = {
  resourceType: 'Procedure',
  id: 'proc-1',
  status: 'completed',
  subject: { reference: 'Patient/p1' },
  basedOn: [{ reference: 'CarePlan/cp-1' }],
  code: { coding: [{ system: 'http://snomed.info/sct', code: '14152002' }] },
  performedPeriod: { start: '2027-01-04T09:00:00.000Z', end: '2027-01-04T10:00:00.000Z' },
};

function followUps(planId: string, completedInfusionCount: number) {
  const plan = catalog.findPlanDefinition(planId)!;
  const carePlan: CarePlan = {
    resourceType: 'CarePlan',
    id: 'cp-1',
    status: 'active',
    intent: 'plan',
    subject: { reference: 'Patient/p1' },
  };
  const check = toInfusionCompleted(procedure);
  if (!check.ok) throw new Error(check.reason);
  return planFollowUps({
    event: check.event,
    carePlan,
    plan,
    catalog,
    completedInfusionCount,
    patientData: { bodyWeight: searchset(bodyWeight(80)) },
    now: new Date('2027-01-04T10:05:00Z'),
  });
}

const windowOf = (f: { task: { restriction?: { period?: unknown } } }) => f.task.restriction?.period;

describe('planFollowUps with the shipped protocols', () => {
  it('induction (3rd of 6 low-dose sessions): check within a week and the next session 2-4 days out', () => {
    const result = followUps('ketamine-low-dose-series', 3);
    expect(result.map((f) => f.actionId)).toEqual(['post-infusion-check', 'next-induction-session']);
    expect(windowOf(result[0])).toEqual({ start: '2027-01-04T10:00:00.000Z', end: '2027-01-11T10:00:00.000Z' });
    expect(windowOf(result[1])).toEqual({ start: '2027-01-06T10:00:00.000Z', end: '2027-01-08T10:00:00.000Z' });
    expect(
      result[1].request?.resourceType === 'MedicationRequest' &&
        result[1].request.dosageInstruction?.[0].doseAndRate?.[0].rateQuantity?.value,
    ).toBe(40);
  });

  it('maintenance (6th low-dose infusion done): check and a booster 6-8 weeks out', () => {
    const result = followUps('ketamine-low-dose-series', 6);
    expect(result.map((f) => f.actionId)).toEqual(['post-infusion-check', 'maintenance-booster']);
    expect(windowOf(result[1])).toEqual({ start: '2027-02-15T10:00:00.000Z', end: '2027-03-01T10:00:00.000Z' });
  });

  it('monthly protocol: booster 28-35 days out once the initial series is done', () => {
    const result = followUps('ketamine-monthly-maintenance', 2);
    expect(windowOf(result.find((f) => f.actionId === 'maintenance-booster')!)).toEqual({
      start: '2027-02-01T10:00:00.000Z',
      end: '2027-02-08T10:00:00.000Z',
    });
  });

  it('keys are deterministic per CarePlan, infusion and rule', () => {
    expect(followUps('ketamine-low-dose-series', 6).map((f) => f.key)).toEqual([
      'cp-1:proc-1:post-infusion-check',
      'cp-1:proc-1:maintenance-booster',
    ]);
  });

  it('the Task points at the infusion that triggered it and awaits approval', () => {
    const [check] = followUps('ketamine-low-dose-series', 1);
    expect(check.task).toMatchObject({
      status: 'requested',
      intent: 'plan',
      focus: { reference: 'Procedure/proc-1' },
      basedOn: [{ reference: 'CarePlan/cp-1' }],
    });
    expect(check.task.businessStatus?.coding?.[0].code).toBe('awaiting-approval');
  });
});

describe('toInfusionCompleted', () => {
  it('ignores procedures that are not completed or not on a care plan', () => {
    expect(toInfusionCompleted({ ...procedure, status: 'in-progress' })).toEqual({
      ok: false,
      reason: 'status is in-progress, not completed',
    });
    expect(toInfusionCompleted({ ...procedure, basedOn: undefined })).toEqual({
      ok: false,
      reason: 'not based on a CarePlan',
    });
  });

  it('accepts performedDateTime as the anchor', () => {
    const check = toInfusionCompleted({
      ...procedure,
      performedPeriod: undefined,
      performedDateTime: '2027-01-04T10:00:00.000Z',
    });
    expect(check.ok && check.event.performed.end).toBe('2027-01-04T10:00:00.000Z');
  });
});

describe('followUpDataNeeds', () => {
  it('asks only for the patient data the follow-up rules read (the dose needs the weight; eligibility data is not re-read)', () => {
    for (const plan of catalog.planDefinitions()) {
      expect([...followUpDataNeeds(plan, catalog)].sort()).toEqual(['bodyWeight', 'completedInfusionCount']);
    }
  });
});
