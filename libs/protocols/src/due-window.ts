import type { Period, PlanDefinitionActionRelatedAction, Range } from '@medplum/fhirtypes';
import { fromInstant } from './action-timing';
import { addDuration, iso } from './calendar';
import { UTC_ZONE } from './clinic-time';
import { UnsupportedElementError } from './unsupported';

/**
 * The concrete due window of an action related to an anchor event: e.g. 'after-end' with offsetRange 6..8 wk
 * of an infusion that ended at T gives [T+6wk, T+8wk]. An offsetDuration gives a single instant.
 */
export function dueWindow(
  anchor: Period,
  related: Pick<PlanDefinitionActionRelatedAction, 'relationship' | 'offsetDuration' | 'offsetRange'>,
  element = 'relatedAction',
  zone: string = UTC_ZONE,
): Period {
  const range: Range = related.offsetRange ?? { low: related.offsetDuration, high: related.offsetDuration };
  const low = range.low;
  const high = range.high ?? range.low;
  // An instant (offsetDuration, or a range of zero width) leaves the rest of that day to act: never an empty window.
  const widen = (p: Period): Period => (p.start === p.end ? fromInstant(Date.parse(p.start!), element, zone) : p);
  const anchorStart = Date.parse(anchor.start ?? anchor.end ?? '');
  const anchorEnd = Date.parse(anchor.end ?? anchor.start ?? '');
  if (Number.isNaN(anchorStart) || Number.isNaN(anchorEnd))
    throw new Error('dueWindow needs an anchor with a start or end');
  const add = (from: number, by: typeof low, sign: number) => addDuration(from, by, element, sign, zone);
  const after = (from: number) => period(add(from, low, 1), add(from, high, 1));
  const before = (from: number) => period(add(from, high, -1), add(from, low, -1));
  switch (related.relationship) {
    case 'after-end':
    case 'concurrent-with-end':
      return widen(after(anchorEnd));
    case 'after-start':
    case 'concurrent-with-start':
    case 'concurrent':
    case 'after':
      return widen(after(anchorStart));
    case 'before-start':
    case 'before':
      return widen(before(anchorStart));
    case 'before-end':
      return widen(before(anchorEnd));
    default:
      throw new UnsupportedElementError(
        `Unsupported relatedAction relationship "${String(related.relationship)}"`,
        element,
      );
  }
}

function period(startMs: number, endMs: number): Period {
  return { start: iso(Math.min(startMs, endMs)), end: iso(Math.max(startMs, endMs)) };
}

/** True when inner lies within outer (inclusive). */
export function periodWithin(inner: Period, outer: Period): boolean {
  const [is, ie, os, oe] = [inner.start, inner.end, outer.start, outer.end].map((d) => Date.parse(d ?? ''));
  return !Number.isNaN(is) && !Number.isNaN(ie) && is <= ie && is >= os && ie <= oe;
}
