import type { Duration, Period, PlanDefinitionActionRelatedAction, Range } from '@medplum/fhirtypes';

const MS_PER_UNIT: Record<string, number> = {
  s: 1000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  wk: 7 * 86_400_000,
};

/** Milliseconds in a UCUM duration (s, min, h, d, wk). Months and years are refused: their length varies. */
export function durationMs(quantity: Duration | undefined): number {
  if (!quantity || quantity.value === undefined) return 0;
  const unit = quantity.code ?? quantity.unit ?? '';
  const perUnit = MS_PER_UNIT[unit];
  if (perUnit === undefined) throw new Error(`Unsupported duration unit "${unit}" (use s, min, h, d or wk)`);
  return quantity.value * perUnit;
}

/**
 * The concrete due window of an action related to an anchor event: e.g. 'after-end' with offsetRange 6..8 wk
 * of an infusion that ended at T gives [T+6wk, T+8wk]. An offsetDuration gives a single instant.
 */
export function dueWindow(
  anchor: Period,
  related: Pick<PlanDefinitionActionRelatedAction, 'relationship' | 'offsetDuration' | 'offsetRange'>,
): Period {
  const range: Range = related.offsetRange ?? { low: related.offsetDuration, high: related.offsetDuration };
  const lowMs = durationMs(range.low);
  const highMs = durationMs(range.high ?? range.low);
  const anchorStart = Date.parse(anchor.start ?? anchor.end ?? '');
  const anchorEnd = Date.parse(anchor.end ?? anchor.start ?? '');
  if (Number.isNaN(anchorStart) || Number.isNaN(anchorEnd))
    throw new Error('dueWindow needs an anchor with a start or end');
  switch (related.relationship) {
    case 'after-end':
    case 'concurrent-with-end':
      return period(anchorEnd + lowMs, anchorEnd + highMs);
    case 'after-start':
    case 'concurrent-with-start':
    case 'concurrent':
    case 'after':
      return period(anchorStart + lowMs, anchorStart + highMs);
    case 'before-start':
    case 'before':
      return period(anchorStart - highMs, anchorStart - lowMs);
    case 'before-end':
      return period(anchorEnd - highMs, anchorEnd - lowMs);
    default:
      throw new Error(`Unsupported relatedAction relationship "${String(related.relationship)}"`);
  }
}

function period(startMs: number, endMs: number): Period {
  return { start: new Date(startMs).toISOString(), end: new Date(endMs).toISOString() };
}

/** True when inner lies within outer (inclusive). */
export function periodWithin(inner: Period, outer: Period): boolean {
  const [is, ie, os, oe] = [inner.start, inner.end, outer.start, outer.end].map((d) => Date.parse(d ?? ''));
  return !Number.isNaN(is) && !Number.isNaN(ie) && is <= ie && is >= os && ie <= oe;
}
