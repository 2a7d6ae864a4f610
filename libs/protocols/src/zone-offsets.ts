import { IANAZone } from 'luxon';

/**
 * A time zone's UTC offsets, read once per zone and year from luxon and kept as that year's changes. Luxon asks Intl
 * for the offset at every step (a few microseconds each, three per calendar step), and the follow-ups move due windows
 * by calendar days in the clinic's zone many times per event. The arithmetic is luxon's own (`fixOffset`), so the
 * answers are the same to the millisecond (zone-offsets.spec.ts compares them).
 */

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** How finely a year is sampled for offset changes: no zone changes its offset twice within 6 hours. */
const SAMPLE_MS = 6 * 3_600_000;

/** One UTC year of a zone: its offset (minutes) from `from`, and each change after it (`at`: the first instant of it). */
interface YearOffsets {
  first: number;
  changes: { at: number; offset: number }[];
}

const zones = new Map<string, { iana: IANAZone; years: Map<number, YearOffsets> }>();

/** The zone's offset from UTC at an instant, in minutes (as luxon's `IANAZone.offset`). */
export function zoneOffset(zone: string, ts: number): number {
  let known = zones.get(zone);
  if (!known) zones.set(zone, (known = { iana: IANAZone.create(zone), years: new Map() }));
  const year = new Date(ts).getUTCFullYear();
  let table = known.years.get(year);
  if (!table) known.years.set(year, (table = yearOffsets(known.iana, year)));
  let offset = table.first;
  for (const change of table.changes) {
    if (ts < change.at) break;
    offset = change.offset;
  }
  return offset;
}

/**
 * `instant` moved by whole days on the zone's calendar: the same wall-clock time that many days later (a day across a
 * change to or from summer time is 23 or 25 hours), a time the change skips moved past it, as luxon's `plus({days})`.
 */
export function addZonedDays(instant: number, days: number, zone: string): number {
  const before = zoneOffset(zone, instant);
  return fixOffset(instant + before * MINUTE_MS + days * DAY_MS, before, zone);
}

/** Luxon's fixOffset: the instant of a wall-clock time, `guess` deciding between the two an ambiguous one has. */
function fixOffset(localTs: number, guess: number, zone: string): number {
  let utc = localTs - guess * MINUTE_MS;
  const o2 = zoneOffset(zone, utc);
  if (o2 === guess) return utc;
  utc -= (o2 - guess) * MINUTE_MS;
  const o3 = zoneOffset(zone, utc);
  if (o2 === o3) return utc;
  // A wall-clock time the change skips: kept as written, at the larger offset.
  return localTs - Math.min(o2, o3) * MINUTE_MS;
}

function yearOffsets(iana: IANAZone, year: number): YearOffsets {
  const from = Date.UTC(year, 0, 1);
  const to = Date.UTC(year + 1, 0, 1);
  const first = iana.offset(from);
  const changes: YearOffsets['changes'] = [];
  let previous = first;
  for (let at = from; at < to; at += SAMPLE_MS) {
    const next = Math.min(at + SAMPLE_MS, to);
    const offset = iana.offset(next);
    if (offset === previous) continue;
    changes.push({ at: firstInstantOf(iana, at, next, offset), offset });
    previous = offset;
  }
  return { first, changes };
}

/** The first instant in (low, high] with the offset `high` has (bisected to the millisecond). */
function firstInstantOf(iana: IANAZone, low: number, high: number, offset: number): number {
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (iana.offset(mid) === offset) high = mid;
    else low = mid;
  }
  return high;
}
