import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PlanDefinition } from '@medplum/fhirtypes';
import {
  activeCondition,
  bloodPressure,
  bodyWeight,
  FIBROMYALGIA,
  PREGNANCY,
  searchset,
} from '../../../test/fixtures/patient-data';
import { applyPlanDefinition } from './apply-plan-definition';
import { ProtocolCatalog } from './catalog';
import { PROTOCOL_WINDOW_EXTENSION } from './canonical';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', 'fhir-profiles'));
const startDate = new Date('2026-12-01T08:00:00.000Z');
const now = new Date('2026-11-22T12:00:00.000Z');

function apply(
  planId: string,
  data: { weight?: number; bp?: [number, number]; conditions?: (readonly [string, string])[] },
) {
  return applyPlanDefinition({
    plan: catalog.findPlanDefinition(planId)!,
    catalog,
    patientId: 'p1',
    startDate,
    now,
    patientData: {
      bodyWeight: data.weight === undefined ? searchset() : searchset(bodyWeight(data.weight)),
      bloodPressure: data.bp ? searchset(bloodPressure(...data.bp)) : searchset(),
      pregnancyStatus: searchset(),
      conditions: searchset(...(data.conditions ?? []).map(([code, display]) => activeCondition(code, display))),
    },
  });
}

describe('applyPlanDefinition with the shipped protocols', () => {
  it('low-dose series: instructions due at start, first session 1-14 days later at 0.5 mg/kg/h', () => {
    const result = apply('ketamine-low-dose-series', { weight: 80, bp: [128, 82], conditions: [FIBROMYALGIA] });
    expect(result.eligible).toBe(true);
    const byAction = Object.fromEntries(
      result.tasks.map((t) => [
        t.resource.extension!.find((e) => e.url.endsWith('protocol-action'))!.valueString!,
        t.resource,
      ]),
    );
    expect(Object.keys(byAction).sort()).toEqual(['infusion-session', 'patient-instructions']);
    expect(byAction['patient-instructions'].restriction?.period).toEqual({
      start: '2026-12-01T08:00:00.000Z',
      end: '2026-12-01T08:00:00.000Z',
    });
    expect(byAction['infusion-session'].restriction?.period).toEqual({
      start: '2026-12-02T08:00:00.000Z',
      end: '2026-12-15T08:00:00.000Z',
    });
    expect(
      byAction['infusion-session'].extension?.find((e: { url: string }) => e.url === PROTOCOL_WINDOW_EXTENSION)
        ?.valuePeriod,
    ).toEqual(byAction['infusion-session'].restriction?.period);
    const infusion = result.requests.find((r) => r.resource.resourceType === 'MedicationRequest')!.resource;
    expect(
      infusion.resourceType === 'MedicationRequest' && infusion.dosageInstruction?.[0].doseAndRate?.[0].rateQuantity,
    ).toMatchObject({ value: 40, unit: 'mg/h' });
    // 2 mg/kg/h ceiling over a 40-minute session for 80 kg
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

  it('no weight on record: the infusion is proposed without a dose, with a warning', () => {
    const result = apply('ketamine-low-dose-series', { bp: [120, 80] });
    const infusion = result.requests.find((r) => r.resource.resourceType === 'MedicationRequest')!.resource;
    expect(
      infusion.resourceType === 'MedicationRequest' &&
        infusion.dosageInstruction?.[0].doseAndRate?.[0].rateQuantity?.value,
    ).toBeUndefined();
    expect(
      result.outcome.issue.some(
        (i) => i.severity === 'warning' && i.details?.coding?.[0].code === 'missing-body-weight',
      ),
    ).toBe(true);
  });

  it('no blood pressure on record is reported, not silently passed', () => {
    const result = apply('ketamine-low-dose-series', { weight: 70 });
    expect(
      result.outcome.issue.some((i) => i.code === 'incomplete' && /blood pressure/i.test(i.details?.text ?? '')),
    ).toBe(true);
  });

  it('is deterministic: the same input gives the same keys', () => {
    const a = apply('ketamine-low-dose-series', { weight: 80 });
    const b = apply('ketamine-low-dose-series', { weight: 80 });
    expect(a.tasks.map((t) => t.resource.identifier)).toEqual(b.tasks.map((t) => t.resource.identifier));
    expect(a.carePlan.fullUrl).toBe(b.carePlan.fullUrl);
  });
});

describe('ProtocolCatalog', () => {
  it('rejects a directory with a broken reference', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'profiles-'));
    const plan = JSON.parse(
      fs.readFileSync(
        path.join(__dirname, '..', '..', '..', 'fhir-profiles', 'PlanDefinition-ketamine-low-dose-series.json'),
        'utf8',
      ),
    ) as PlanDefinition;
    fs.writeFileSync(path.join(dir, 'PlanDefinition-x.json'), JSON.stringify(plan));
    expect(() => ProtocolCatalog.fromDirectory(dir)).toThrow(/definitionCanonical .* is not in fhir-profiles/);
  });

  it('finds protocols by id, url and url|version', () => {
    const plan = catalog.findPlanDefinition('ketamine-low-dose-series')!;
    expect(catalog.findPlanDefinition(plan.url!)).toBe(plan);
    expect(catalog.findPlanDefinition(`${plan.url}|${plan.version}`)).toBe(plan);
  });
});
