import type {
  CodeableConcept,
  Extension,
  Observation,
  Period,
  PlanDefinition,
  PlanDefinitionAction,
  Range,
  Task,
  TaskInput,
} from '@medplum/fhirtypes';
import {
  clinicDay,
  dueWindow,
  flattenActions,
  OUTCOME_TIMING_EXTENSION,
  protocolWindowOf,
  SERVICE_CODE_SYSTEM,
} from '@kc/protocols';
import { withWindow } from '@kc/task-states';

/**
 * Outcome-driven boosters: the scores a patient reports after an infusion (pain NRS, PEG, PHQ-9) against their
 * baseline move a proposed maintenance booster within the protocol's window: toward its start when they rise back
 * toward baseline, toward its end when relief holds. Everything numeric (which scores, thresholds, the two
 * windows) is the `outcome-driven-timing` extension on the PlanDefinition action (fhir-profiles). Pure.
 */

export interface OutcomeTimingRule {
  scores: CodeableConcept[];
  /** Improvement on baseline (fraction) under which the booster comes earlier. */
  relapseBelow: number;
  /** Improvement on baseline (fraction) from which, for every score, the booster comes later. */
  sustainedAtLeast: number;
  earlier: Range;
  later: Range;
}

export function outcomeTimingRule(action: PlanDefinitionAction | undefined): OutcomeTimingRule | undefined {
  const ext = action?.extension?.find((e) => e.url === OUTCOME_TIMING_EXTENSION);
  if (!ext) return undefined;
  const parts = (url: string) => ext.extension?.filter((e) => e.url === url) ?? [];
  const first = (url: string): Extension | undefined => parts(url)[0];
  const rule = {
    scores: parts('score').flatMap((e) => (e.valueCodeableConcept ? [e.valueCodeableConcept] : [])),
    relapseBelow: first('relapse-below')?.valueDecimal,
    sustainedAtLeast: first('sustained-at-least')?.valueDecimal,
    earlier: first('earlier')?.valueRange,
    later: first('later')?.valueRange,
  };
  const { relapseBelow, sustainedAtLeast, earlier, later } = rule;
  if (!rule.scores.length || relapseBelow === undefined || sustainedAtLeast === undefined || !earlier || !later)
    return undefined;
  return { scores: rule.scores, relapseBelow, sustainedAtLeast, earlier, later };
}

/** The LOINC (or other) codes of every score a rule reads, for one search. */
export function scoreCodes(rule: Pick<OutcomeTimingRule, 'scores'>): string[] {
  return rule.scores.flatMap((s) => (s.coding ?? []).map((c) => `${c.system}|${c.code}`));
}

/**
 * Every score the protocols' outcome-driven timing reads, once each (by its text), in the order first listed, with
 * every coding any of them gives it (two protocols may code "Pain NRS" differently: an EHR's with a local code).
 */
export function outcomeScores(plans: PlanDefinition[]): CodeableConcept[] {
  const byName = new Map<string, CodeableConcept>();
  for (const rule of plans.flatMap((p) => flattenActions(p.action ?? []).map(outcomeTimingRule)))
    for (const score of rule?.scores ?? []) {
      const name = score.text ?? scoreCodes({ scores: [score] }).join(',');
      const known = byName.get(name);
      const listed = new Set(scoreCodes({ scores: known ? [known] : [] }));
      const added = (score.coding ?? []).filter((c) => !listed.has(`${c.system}|${c.code}`));
      byName.set(name, known ? { ...known, coding: [...(known.coding ?? []), ...added] } : score);
    }
  return [...byName.values()];
}

export interface ScoreReading {
  observation: Observation;
  value: number;
}

export interface ScoreChange {
  score: string;
  baseline: ScoreReading;
  latest: ScoreReading;
  /** (baseline - latest) / baseline: 1 = no symptoms left, 0 = back to baseline, negative = worse. */
  improvement: number;
}

export interface BoosterProposal {
  direction: 'earlier' | 'later';
  window: Period;
  changes: ScoreChange[];
  rationale: string;
  /** The scores behind it, as the Task's inputs (each named with its value and the clinic's day). */
  evidence: TaskInput[];
}

export interface BoosterInput {
  rule: OutcomeTimingRule;
  /** The patient's score Observations (any order; final and amended ones count). */
  observations: Observation[];
  /** When the first infusion on the plan started: the baseline is the latest score before it. */
  firstInfusionStart: string;
  /** When the last infusion ended: the booster's window and the scores that judge it start there. */
  lastInfusionEnd: string;
  /** The protocol's window for the booster: a proposal never leaves it. */
  protocolWindow?: Period;
  /** The clinic's time zone: the calendar weeks the window counts in (clinic-time). UTC unless given. */
  zone?: string;
}

/** The booster to propose from the scores, or undefined when they say neither earlier nor later. */
export function boosterProposal(input: BoosterInput): BoosterProposal | undefined {
  const { rule } = input;
  const changes = rule.scores.flatMap((score) => {
    const change = scoreChange(score, input);
    return change ? [change] : [];
  });
  const relapsing = changes.filter((c) => c.improvement < rule.relapseBelow);
  const direction = relapsing.length
    ? 'earlier'
    : changes.length && changes.every((c) => c.improvement >= rule.sustainedAtLeast)
      ? 'later'
      : undefined;
  if (!direction) return undefined;
  const used = direction === 'earlier' ? relapsing : changes;
  const window = clamp(
    dueWindow(
      { start: input.lastInfusionEnd, end: input.lastInfusionEnd },
      { relationship: 'after-end', offsetRange: rule[direction] },
      'relatedAction',
      input.zone,
    ),
    input.protocolWindow,
  );
  return {
    direction,
    window,
    changes: used,
    rationale: rationale(direction, used, rule, input.zone),
    evidence: evidenceInputs(used, input.zone),
  };
}

/**
 * The booster Task as proposed now: the window the scores call for, the reason and the Observations behind it; or,
 * when they call for neither, back to the protocol's whole window without an outcome reason. Undefined when the Task
 * already says exactly that (a repeated or irrelevant score event writes nothing).
 */
export function reproposedBooster(task: Task, proposal: BoosterProposal | undefined): Task | undefined {
  const others = {
    reasonCode: task.reasonCode?.coding?.some(isOutcomeReason) ? undefined : task.reasonCode,
    input: task.input?.filter(
      (i) => !i.type.coding?.some((c) => c.system === SERVICE_CODE_SYSTEM && c.code === EVIDENCE),
    ),
  };
  const protocolWindow = protocolWindowOf(task);
  const next: Task = proposal
    ? {
        ...withWindow(task, proposal.window),
        reasonCode: {
          coding: [
            {
              system: SERVICE_CODE_SYSTEM,
              code: `booster-${proposal.direction}`,
              display: DISPLAY[proposal.direction],
            },
          ],
          text: proposal.rationale,
        },
        input: [...(others.input ?? []), ...proposal.evidence],
      }
    : {
        ...withWindow(task, protocolWindow),
        reasonCode: others.reasonCode,
        input: others.input,
      };
  for (const key of ['reasonCode', 'input'] as const)
    if (!next[key] || (Array.isArray(next[key]) && !next[key].length)) delete next[key];
  return sameProposal(task, next) ? undefined : next;
}

const EVIDENCE = 'outcome-evidence';
const DISPLAY = {
  earlier: 'Booster proposed earlier: scores returning toward baseline',
  later: 'Booster proposed later: relief sustained',
};

function isOutcomeReason(c: { system?: string; code?: string }): boolean {
  return c.system === SERVICE_CODE_SYSTEM && (c.code === 'booster-earlier' || c.code === 'booster-later');
}

function evidenceInputs(changes: ScoreChange[], zone?: string): TaskInput[] {
  return changes.flatMap((c) =>
    [c.baseline, c.latest].map((r) => ({
      type: {
        coding: [{ system: SERVICE_CODE_SYSTEM, code: EVIDENCE, display: 'Score behind a proposal' }],
        text: c.score,
      },
      valueReference: {
        reference: `Observation/${r.observation.id}`,
        display: `${c.score} ${r.value} on ${clinicDay(observedAt(r.observation), zone)}`,
      },
    })),
  );
}

function sameProposal(a: Task, b: Task): boolean {
  const pick = (t: Task) => JSON.stringify([t.restriction?.period, t.reasonCode ?? null, t.input ?? null]);
  return pick(a) === pick(b);
}

function scoreChange(score: CodeableConcept, input: BoosterInput): ScoreChange | undefined {
  const codes = new Set((score.coding ?? []).map((c) => `${c.system}|${c.code}`));
  const readings = input.observations
    .filter((o) => o.status !== 'entered-in-error' && o.status !== 'cancelled' && o.status !== 'preliminary')
    .filter((o) => o.code?.coding?.some((c) => codes.has(`${c.system}|${c.code}`)))
    .filter((o) => scoreValue(o, codes) !== undefined && observedAt(o) !== undefined)
    .sort((x, y) => Date.parse(observedAt(x)!) - Date.parse(observedAt(y)!));
  const baseline = readings.filter((o) => Date.parse(observedAt(o)!) <= Date.parse(input.firstInfusionStart)).pop();
  const latest = readings.filter((o) => Date.parse(observedAt(o)!) >= Date.parse(input.lastInfusionEnd)).pop();
  const base = baseline && scoreValue(baseline, codes);
  const now = latest && scoreValue(latest, codes);
  if (!baseline || !latest || !base || base <= 0 || now === undefined) return undefined;
  return {
    score: score.text ?? score.coding?.[0]?.display ?? score.coding?.[0]?.code ?? 'score',
    baseline: { observation: baseline, value: base },
    latest: { observation: latest, value: now },
    improvement: (base - now) / base,
  };
}

/**
 * A score's number: valueQuantity/valueInteger, or else the component coded as the same score (a PEG panel carries
 * its mean as a component).
 */
export function scoreValue(o: Observation, codes?: ReadonlySet<string>): number | undefined {
  const direct = o.valueQuantity?.value ?? o.valueInteger;
  if (direct !== undefined || !codes) return direct;
  return o.component?.find((c) => c.code.coding?.some((cc) => codes.has(`${cc.system}|${cc.code}`)))?.valueQuantity
    ?.value;
}

/** When a reading was taken: its effective time (a period's end, else its start), else when it was issued. */
export function observedAt(o: Observation): string | undefined {
  return o.effectiveDateTime ?? o.effectivePeriod?.end ?? o.effectivePeriod?.start ?? o.effectiveInstant ?? o.issued;
}

function clamp(window: Period, bounds: Period | undefined): Period {
  if (!bounds?.start || !bounds.end) return window;
  const start = Math.max(Date.parse(window.start!), Date.parse(bounds.start));
  const end = Math.min(Date.parse(window.end!), Date.parse(bounds.end));
  return start < end ? { start: new Date(start).toISOString(), end: new Date(end).toISOString() } : bounds;
}

function rationale(
  direction: 'earlier' | 'later',
  changes: ScoreChange[],
  rule: OutcomeTimingRule,
  zone?: string,
): string {
  const each = changes
    .map(
      (c) =>
        `${c.score} ${c.latest.value} on ${clinicDay(observedAt(c.latest.observation), zone)} against a baseline of ${c.baseline.value} (${Math.round(c.improvement * 100)}% better)`,
    )
    .join('; ');
  const why =
    direction === 'earlier'
      ? `less than ${Math.round(rule.relapseBelow * 100)}% better than baseline: scores returning toward baseline`
      : `every score at least ${Math.round(rule.sustainedAtLeast * 100)}% better than baseline: relief sustained`;
  return `${each}; ${why}. Booster proposed ${direction} in the protocol window.`;
}
