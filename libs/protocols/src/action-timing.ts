import type { Period, PlanDefinitionAction, Timing } from '@medplum/fhirtypes';
import { addDuration, iso, timeUnit } from './calendar';
import { UTC_ZONE } from './clinic-time';
import { UnsupportedElementError } from './unsupported';

export interface ActionTiming {
  /** When the action is due. */
  window: Period;
  /** A repeating schedule for the request to carry (timingTiming), e.g. monthly x 8. */
  timing?: Timing;
}

/** How long an instant (timingDateTime, offsetDuration) leaves to act: the rest of that day. */
const INSTANT_TOLERANCE = { value: 1, code: 'd' };

/**
 * The window of an action's own timing[x], relative to the plan's start (Duration, Range), the patient's
 * birth (Age) or absolute (dateTime, Period); undefined when the action has none. timingTiming's window spans
 * the whole schedule (bounds, or count occurrences of frequency per period) and the Timing goes on the request.
 */
export function windowFromTiming(
  action: PlanDefinitionAction,
  start: number,
  birthDate: string | undefined,
  element: string,
  zone: string = UTC_ZONE,
): ActionTiming | undefined {
  if (action.timingDateTime)
    return { window: fromInstant(Date.parse(action.timingDateTime), `${element}.timingDateTime`, zone) };
  if (action.timingPeriod) {
    const from = Date.parse(action.timingPeriod.start ?? action.timingPeriod.end ?? '');
    const to = action.timingPeriod.end
      ? Date.parse(action.timingPeriod.end)
      : addDuration(from, INSTANT_TOLERANCE, element, 1, zone);
    return { window: { start: iso(from), end: iso(to) } };
  }
  if (action.timingDuration) {
    return {
      window: {
        start: iso(start),
        end: iso(addDuration(start, action.timingDuration, `${element}.timingDuration`, 1, zone)),
      },
    };
  }
  if (action.timingRange) {
    const at = `${element}.timingRange`;
    const low = addDuration(start, action.timingRange.low, at, 1, zone);
    const high = addDuration(start, action.timingRange.high ?? action.timingRange.low, at, 1, zone);
    return { window: { start: iso(low), end: iso(high) } };
  }
  if (action.timingAge) {
    const at = `${element}.timingAge`;
    if (!birthDate) throw new UnsupportedElementError('timingAge needs the patient birthDate', at);
    const from = addDuration(Date.parse(birthDate), action.timingAge, at, 1, zone);
    // "At age 50" is the year of life that starts then, in the Age's own unit.
    const to = addDuration(from, { value: 1, code: timeUnit(action.timingAge, at) }, at, 1, zone);
    return { window: { start: iso(from), end: iso(to) } };
  }
  if (action.timingTiming) return timingWindow(action.timingTiming, start, `${element}.timingTiming`, zone);
  return undefined;
}

/** An instant widened to a day, so every Task has a window to act in. */
export function fromInstant(instant: number, element: string, zone: string = UTC_ZONE): Period {
  if (Number.isNaN(instant)) throw new UnsupportedElementError('Not a dateTime', element);
  return { start: iso(instant), end: iso(addDuration(instant, INSTANT_TOLERANCE, element, 1, zone)) };
}

function timingWindow(timing: Timing, start: number, element: string, zone: string): ActionTiming {
  const add = (from: number, quantity: Parameters<typeof addDuration>[1], at: string) =>
    addDuration(from, quantity, at, 1, zone);
  const repeat = timing.repeat;
  const firstEvent = timing.event?.length ? Math.min(...timing.event.map((e) => Date.parse(e))) : undefined;
  const from = repeat?.boundsPeriod?.start ? Date.parse(repeat.boundsPeriod.start) : (firstEvent ?? start);
  let to: number;
  if (repeat?.boundsPeriod?.end) to = Date.parse(repeat.boundsPeriod.end);
  else if (repeat?.boundsDuration) to = add(from, repeat.boundsDuration, `${element}.repeat.boundsDuration`);
  else if (repeat?.boundsRange)
    to = add(from, repeat.boundsRange.high ?? repeat.boundsRange.low, `${element}.repeat.boundsRange`);
  else if (repeat?.period !== undefined && repeat.periodUnit) {
    // count occurrences at `frequency` per period: the schedule lasts ceil(count / frequency) periods.
    const periods = Math.max(1, Math.ceil((repeat.count ?? 1) / (repeat.frequency ?? 1)));
    to = add(from, { value: repeat.period * periods, code: repeat.periodUnit }, `${element}.repeat.period`);
  } else if (timing.event?.length)
    to = add(Math.max(...timing.event.map((e) => Date.parse(e))), INSTANT_TOLERANCE, element);
  else throw new UnsupportedElementError('timingTiming needs events, bounds or a period', element);
  return { window: { start: iso(from), end: iso(to) }, timing };
}

/**
 * A Task must never be overdue at birth: a window that ended before `created` keeps its length but starts at
 * `created` (e.g. a plan applied with a start date in the past, or an event processed late).
 */
export function notBefore(window: Period, created: number): Period {
  const start = Date.parse(window.start!);
  const end = Date.parse(window.end!);
  if (end > created) return window;
  return { start: iso(created), end: iso(created + Math.max(end - start, 86_400_000)) };
}

/** The smallest period holding both: the earlier start, the later end. */
export function periodUnion(a: Period, b: Period): Period {
  return {
    start: Date.parse(a.start!) <= Date.parse(b.start!) ? a.start : b.start,
    end: Date.parse(a.end!) >= Date.parse(b.end!) ? a.end : b.end,
  };
}
