import * as path from 'node:path';
import type { CarePlan, Condition, Patient, Procedure } from '@medplum/fhirtypes';
import { ProtocolCatalog } from '@kc/protocols';
import { activeCondition, bodyWeight, PREGNANCY, searchset } from '../../../test/fixtures/patient-data';
import { toInfusionCompleted } from './infusion-event';
import { planFollowUps } from './plan-follow-ups';

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

function followUps(
  planId: string,
  completedInfusionCount: number,
  conditions: Condition[] = [],
  planAs: Partial<CarePlan> = {},
  patientAs: Partial<Patient> = {},
) {
  const plan = catalog.findPlanDefinition(planId)!;
  const carePlan: CarePlan = {
    resourceType: 'CarePlan',
    id: 'cp-1',
    status: 'active',
    intent: 'plan',
    subject: { reference: 'Patient/p1' },
    ...planAs,
  };
  const check = toInfusionCompleted(procedure);
  if (!check.ok) throw new Error(check.reason);
  return planFollowUps({
    event: check.event,
    carePlan,
    plan,
    catalog,
    completedInfusionCount,
    ...(Object.keys(patientAs).length ? { patient: { resourceType: 'Patient', id: 'p1', ...patientAs } } : {}),
    patientData: {
      bodyWeight: searchset(bodyWeight(80)),
      bloodPressure: searchset(),
      pregnancyStatus: searchset(),
      conditions: searchset(...conditions),
    },
    now: new Date('2027-01-04T10:05:00Z'),
  });
}

const windowOf = (f: { task: { restriction?: { period?: unknown } } }) => f.task.restriction?.period;

describe('planFollowUps with the shipped protocols', () => {
  it('a contraindication recorded since enrolment stops the next session, not the post-infusion check', () => {
    const plan = followUps('ketamine-low-dose-series', 3, [
      { ...activeCondition(...PREGNANCY, 'Patient/p1'), id: 'preg' },
    ]);
    expect(plan.followUps.map((f) => f.actionId)).toEqual(['post-infusion-check']);
    expect(plan.detectedIssues.map((i) => i.resource.code?.coding?.[0].code)).toEqual(['pregnancy']);
    expect(plan.detectedIssues[0].resource.evidence?.[0].detail).toEqual([{ reference: 'Condition/preg' }]);
    expect(plan.detectedIssues[0].resource.implicated).toEqual([{ reference: 'CarePlan/cp-1' }]);
    // The detail is read by clinicians (the page, an EHR): the infusion by its day, not by its Procedure's id.
    expect(plan.detectedIssues[0].resource.detail).toMatch(
      /Found after the infusion of 2027-01-04: no further infusion/,
    );
    expect(plan.detectedIssues[0].resource.detail).not.toMatch(/Procedure\//);
  });

  it('under a plan the EHR stopped or completed: the post-infusion check alone, no contraindication recorded', () => {
    const pregnant = [{ ...activeCondition(...PREGNANCY, 'Patient/p1'), id: 'preg' }];
    for (const status of ['revoked', 'completed'] as const) {
      const plan = followUps('ketamine-low-dose-series', 3, pregnant, { status });
      expect(plan.followUps.map((f) => f.actionId)).toEqual(['post-infusion-check']);
      expect(plan.detectedIssues).toEqual([]);
    }
    // Its patient recorded as deceased: nothing (their death withdrew what the plan kept).
    expect(
      followUps('ketamine-low-dose-series', 3, [], { status: 'revoked' }, { deceasedDateTime: '2027-01-04' }).followUps,
    ).toEqual([]);
    // Paused: as under an active plan (its sessions wait for it to resume).
    expect(
      followUps('ketamine-low-dose-series', 3, [], { status: 'on-hold' }).followUps.map((f) => f.actionId),
    ).toEqual(['next-induction-session', 'post-infusion-check']);
  });

  it('induction (3rd of 6 low-dose sessions): check within a week and the next session 2-4 days out', () => {
    const result = followUps('ketamine-low-dose-series', 3).followUps;
    expect(result.map((f) => f.actionId)).toEqual(['next-induction-session', 'post-infusion-check']);
    expect(windowOf(result[1])).toEqual({ start: '2027-01-04T10:00:00.000Z', end: '2027-01-11T10:00:00.000Z' });
    expect(windowOf(result[0])).toEqual({ start: '2027-01-06T10:00:00.000Z', end: '2027-01-08T10:00:00.000Z' });
    expect(
      result[0].request?.resourceType === 'MedicationRequest' &&
        result[0].request.dosageInstruction?.[0].doseAndRate?.[0].rateQuantity?.value,
    ).toBe(40);
    expect(result[0].task.focus?.reference).toBe(result[0].requestFullUrl);
  });

  it('maintenance (6th low-dose infusion done): check and a booster 6-8 weeks out', () => {
    const result = followUps('ketamine-low-dose-series', 6).followUps;
    expect(result.map((f) => f.actionId)).toEqual(['maintenance-booster', 'post-infusion-check']);
    expect(windowOf(result[0])).toEqual({ start: '2027-02-15T10:00:00.000Z', end: '2027-03-01T10:00:00.000Z' });
  });

  it('monthly protocol: booster 28-35 days out once the initial series is done', () => {
    const result = followUps('ketamine-monthly-maintenance', 2).followUps;
    expect(windowOf(result.find((f) => f.actionId === 'maintenance-booster')!)).toEqual({
      start: '2027-02-01T10:00:00.000Z',
      end: '2027-02-08T10:00:00.000Z',
    });
  });

  it('keys are deterministic per CarePlan, infusion and rule', () => {
    expect(followUps('ketamine-low-dose-series', 6).followUps.map((f) => f.key)).toEqual([
      'cp-1:proc-1:maintenance-booster',
      'cp-1:proc-1:post-infusion-check',
    ]);
  });

  it('the Task points at the infusion that triggered it and awaits approval', () => {
    const [check] = followUps('ketamine-low-dose-series', 1).followUps;
    expect(check.task).toMatchObject({
      status: 'draft',
      intent: 'plan',
      reasonReference: { reference: 'Procedure/proc-1' },
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
