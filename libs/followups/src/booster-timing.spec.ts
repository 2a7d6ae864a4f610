import * as path from 'node:path';
import type { Observation, PlanDefinition, Task } from '@medplum/fhirtypes';
import { flattenActions, PROTOCOL_WINDOW_EXTENSION, ProtocolCatalog } from '@kc/protocols';
import {
  boosterProposal,
  outcomeScores,
  outcomeTimingRule,
  reproposedBooster,
  scoreCodes,
  type OutcomeTimingRule,
} from './booster-timing';

const catalog = ProtocolCatalog.fromDirectory(path.join(__dirname, '..', '..', '..', 'fhir-profiles'));
function ruleOf(planId: string): OutcomeTimingRule {
  const plan = catalog.findPlanDefinition(planId)!;
  return outcomeTimingRule(flattenActions(plan.action ?? []).find((a) => a.id === 'maintenance-booster'))!;
}
const lowDose = ruleOf('ketamine-low-dose-series');

let n = 0;
function reading(code: string, value: number, when: string, extra: Partial<Observation> = {}): Observation {
  return {
    resourceType: 'Observation',
    id: `o${++n}`,
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code }] },
    effectiveDateTime: when,
    valueQuantity: { value },
    ...extra,
  };
}
const FIRST = '2027-01-01T09:00:00.000Z';
const LAST_END = '2027-01-04T10:00:00.000Z';
const propose = (observations: Observation[], rule = lowDose) =>
  boosterProposal({ rule, observations, firstInfusionStart: FIRST, lastInfusionEnd: LAST_END });

describe('outcome-driven booster timing (thresholds from fhir-profiles)', () => {
  it('reads the rule: three scores, 30% / 50%, earlier 6-7 wk, later 7-8 wk', () => {
    expect(lowDose.scores.map((s) => s.text)).toEqual(['Pain NRS', 'PEG', 'PHQ-9']);
    expect([lowDose.relapseBelow, lowDose.sustainedAtLeast]).toEqual([0.3, 0.5]);
    expect(ruleOf('ketamine-monthly-maintenance').earlier.high?.value).toBe(31);
  });

  it('earlier when any score is back within 30% of its baseline (or worse), naming only those scores', () => {
    const proposal = propose([
      reading('72514-3', 8, '2026-12-20T00:00:00Z'),
      reading('72514-3', 2, '2027-01-10T00:00:00Z'),
      reading('44261-6', 10, '2026-12-20T00:00:00Z'),
      reading('44261-6', 12, '2027-01-10T00:00:00Z'),
    ])!;
    expect(proposal.direction).toBe('earlier');
    expect(proposal.window).toEqual({ start: '2027-02-15T10:00:00.000Z', end: '2027-02-22T10:00:00.000Z' });
    expect(proposal.changes.map((c) => [c.score, c.improvement])).toEqual([['PHQ-9', -0.2]]);
  });

  it('later only when every score is at least 50% better; a PEG panel counts by its mean component', () => {
    const peg = (value: number, when: string) =>
      reading('91148-7', 0, when, {
        valueQuantity: undefined,
        component: [{ code: { coding: [{ system: 'http://loinc.org', code: '91147-9' }] }, valueQuantity: { value } }],
      });
    const later = propose([
      reading('72514-3', 8, '2026-12-20T00:00:00Z'),
      reading('72514-3', 3, '2027-01-10T00:00:00Z'),
      peg(7, '2026-12-20T00:00:00Z'),
      peg(3, '2027-01-11T00:00:00Z'),
    ])!;
    expect(later.direction).toBe('later');
    expect(later.window).toEqual({ start: '2027-02-22T10:00:00.000Z', end: '2027-03-01T10:00:00.000Z' });
    expect(later.rationale).toMatch(/PEG 3 on 2027-01-11 against a baseline of 7 \(57% better\)/);
    // One score in between (40%): neither.
    expect(
      propose([reading('72514-3', 10, '2026-12-20T00:00:00Z'), reading('72514-3', 6, '2027-01-10T00:00:00Z')]),
    ).toBeUndefined();
  });

  it('nothing without a baseline before the first infusion or a score after the last; errors do not count', () => {
    expect(propose([reading('72514-3', 2, '2027-01-10T00:00:00Z')])).toBeUndefined();
    expect(propose([reading('72514-3', 8, '2026-12-20T00:00:00Z')])).toBeUndefined();
    expect(
      propose([
        reading('72514-3', 8, '2026-12-20T00:00:00Z'),
        reading('72514-3', 8, '2027-01-10T00:00:00Z', { status: 'entered-in-error' }),
      ]),
    ).toBeUndefined();
  });

  it('re-proposes a booster Task only when something changes, and restores the protocol window when neither', () => {
    const window = { start: '2027-02-15T10:00:00.000Z', end: '2027-03-01T10:00:00.000Z' };
    const task: Task = {
      resourceType: 'Task',
      id: 't1',
      status: 'draft',
      intent: 'plan',
      restriction: { period: window },
      extension: [{ url: PROTOCOL_WINDOW_EXTENSION, valuePeriod: window }],
    };
    const earlier = propose([
      reading('72514-3', 8, '2026-12-20T00:00:00Z'),
      reading('72514-3', 7, '2027-01-10T00:00:00Z'),
    ]);
    const moved = reproposedBooster(task, earlier)!;
    expect(moved.restriction?.period?.end).toBe('2027-02-22T10:00:00.000Z');
    expect(moved.input).toHaveLength(2);
    expect(reproposedBooster(moved, earlier)).toBeUndefined();
    const restored = reproposedBooster(moved, undefined)!;
    expect(restored.restriction?.period).toEqual(window);
    expect(restored.reasonCode).toBeUndefined();
    expect(restored.input).toBeUndefined();
    expect(reproposedBooster(task, undefined)).toBeUndefined();
  });

  it('lists each score once by name, with every coding the protocols give it (an EHR’s local code included)', () => {
    const plans = catalog.planDefinitions();
    const local = { system: 'http://ehr.example/CodeSystem/scores', code: 'pain-0-10' };
    const ehr = JSON.parse(
      JSON.stringify(catalog.findPlanDefinition('ketamine-high-dose-as-needed')).replaceAll(
        '{"system":"http://loinc.org","code":"72514-3"',
        `{"system":"${local.system}","code":"${local.code}"`,
      ),
    ) as PlanDefinition;
    const catalogScores = outcomeScores(plans);
    const merged = outcomeScores([...plans, ehr]);
    expect(merged.map((s) => s.text)).toEqual(catalogScores.map((s) => s.text));
    const pain = merged.find((s) => s.coding?.some((c) => c.code === '72514-3'))!;
    expect(scoreCodes({ scores: [pain] })).toEqual(['http://loinc.org|72514-3', `${local.system}|${local.code}`]);
  });
});
