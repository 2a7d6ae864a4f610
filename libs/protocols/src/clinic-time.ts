import { DateTime } from 'luxon';
import { addZonedDays } from './zone-offsets';

/**
 * The clinic's calendar: the days and times clinicians and patients read are the clinic's own (CLINIC_TIME_ZONE, an
 * IANA zone), while every instant the service stores stays UTC (FHIR instants with `Z`). A date given alone (a plan's
 * start, a filter's day) is that day in the clinic, from its local midnight. `UTC` keeps days as UTC days.
 */
export const UTC_ZONE = 'UTC';

const DAY_MS = 86_400_000;

function inZone(instant: string | number, zone: string): DateTime {
  const at = typeof instant === 'number' ? DateTime.fromMillis(instant) : DateTime.fromISO(instant, { setZone: true });
  return at.setZone(zone);
}

/** A FHIR date (`2026`, `2026-10`, `2026-10-01`): a day or more on a calendar already, no instant to move. */
const DATE_ONLY = /^\d{4}(-\d{2}(-\d{2})?)?$/;

/**
 * The clinic's day of an instant, `yyyy-MM-dd` (undefined for none or an unreadable one). A date alone (a condition's
 * onset, say) is that date as written.
 */
export function clinicDay(instant: string | number | undefined, zone: string = UTC_ZONE): string | undefined {
  if (instant === undefined || instant === '') return undefined;
  if (typeof instant === 'string' && DATE_ONLY.test(instant)) return instant;
  const at = inZone(instant, zone);
  return at.isValid ? at.toISODate()! : undefined;
}

/**
 * The clinic's day and time of an instant, `yyyy-MM-dd HH:mm` (undefined for none or an unreadable one). A date alone
 * is that date as written.
 */
export function clinicDateTime(instant: string | number | undefined, zone: string = UTC_ZONE): string | undefined {
  if (instant === undefined || instant === '') return undefined;
  if (typeof instant === 'string' && DATE_ONLY.test(instant)) return instant;
  const at = inZone(instant, zone);
  return at.isValid ? at.toFormat('yyyy-MM-dd HH:mm') : undefined;
}

/** A period's instants in the clinic's days and times, its zone named: "2027-01-06 10:00 .. 2027-01-08 10:00 (UTC)". */
export function clinicPeriod(period: { start?: string; end?: string }, zone: string = UTC_ZONE): string {
  const at = (instant: string | undefined) => clinicDateTime(instant, zone) ?? '…';
  return `${at(period.start)} .. ${at(period.end)} (${zone})`;
}

/**
 * A window's days as the clinic reads them: "2027-03-02 to 2027-03-14", or one day alone. A window of whole days ends
 * at the midnight after its last day, so an end at the clinic's midnight closes the day before; any other end, its
 * own day. Open ends read "…".
 */
export function clinicDays(window: { start?: string; end?: string }, zone: string = UTC_ZONE): string {
  const first = clinicDay(window.start, zone) ?? '…';
  const end = window.end ? inZone(window.end, zone) : undefined;
  const last =
    end?.isValid && !DATE_ONLY.test(window.end!)
      ? (end.hour === 0 && end.minute === 0 && end.second === 0 ? end.minus({ days: 1 }) : end).toISODate()!
      : (clinicDay(window.end, zone) ?? '…');
  // An empty window (an instant) is its start's day.
  if (first === last || (first !== '…' && last !== '…' && last < first)) return first;
  return `${first} to ${last}`;
}

/**
 * When a window is, in words for a patient, in the clinic's zone: a booked slot (a day or less, not a whole day) "is
 * booked for Tuesday 5 January 2027 at 09:00 UTC", a whole day "is planned for Tuesday 5 January 2027", anything longer
 * "is due between Wednesday 6 January and Friday 8 January 2027" (a window of whole days up to its last day).
 */
export function whenInWords(window: { start?: string; end?: string }, zone: string = UTC_ZONE): string | undefined {
  const start = window.start ? inZone(window.start, zone) : undefined;
  const end = window.end ? inZone(window.end, zone) : undefined;
  if (!start?.isValid || !end?.isValid || end < start) return undefined;
  const day = (at: DateTime) => at.toFormat('cccc d LLLL yyyy');
  const midnight = (at: DateTime) => at.hour === 0 && at.minute === 0 && at.second === 0;
  const wholeDays = midnight(start) && midnight(end);
  if (wholeDays && +end.minus({ days: 1 }) <= +start) return `is planned for ${day(start)}`;
  if (!wholeDays && end.diff(start, 'hours').hours <= 24)
    return `is booked for ${day(start)} at ${start.toFormat('HH:mm ZZZZ')}`;
  const last = midnight(end) ? end.minus({ days: 1 }) : end;
  const first = start.year === last.year ? start.toFormat('cccc d LLLL') : day(start);
  return `is due between ${first} and ${day(last)}`;
}

/**
 * The instant a day given alone starts in the clinic (`2027-01-04` in America/New_York: 05:00Z); a dateTime with its
 * own time or offset is that instant. Undefined when it is not a date.
 */
export function clinicInstant(value: string, zone: string = UTC_ZONE): Date | undefined {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const at = dateOnly ? DateTime.fromISO(value, { zone }) : DateTime.fromISO(value, { zone, setZone: true });
  return at.isValid ? at.toJSDate() : undefined;
}

/**
 * `instant` moved by whole calendar units in the clinic (days, weeks, months, years): the same wall-clock time that
 * many days later, across a change to or from summer time too (a day is then 23 or 25 hours). Months end-clamped
 * (Jan 31 + 1 month = Feb 28).
 */
export function addClinicCalendar(
  instant: number,
  units: { days?: number; weeks?: number; months?: number; years?: number },
  zone: string = UTC_ZONE,
): number {
  const days = (units.days ?? 0) + (units.weeks ?? 0) * 7;
  if (!units.months && !units.years && Number.isInteger(days))
    // UTC has no summer time: its days are 24 hours, and the follow-up path adds many of them. Another zone's offsets
    // are kept per year (zone-offsets.ts), luxon's arithmetic without asking Intl at each step.
    return zone === UTC_ZONE ? instant + days * DAY_MS : addZonedDays(instant, days, zone);
  return DateTime.fromMillis(instant, { zone }).plus(units).toMillis();
}
