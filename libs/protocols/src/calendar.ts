import type { Quantity } from '@medplum/fhirtypes';
import { addClinicCalendar, UTC_ZONE } from './clinic-time';
import { UnsupportedElementError } from './unsupported';

const FIXED_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  wk: 7 * 86_400_000,
};
/** Human spellings some authors put in `unit` when `code` is absent. */
const ALIASES: Record<string, string> = {
  second: 's',
  seconds: 's',
  minute: 'min',
  minutes: 'min',
  hour: 'h',
  hours: 'h',
  day: 'd',
  days: 'd',
  week: 'wk',
  weeks: 'wk',
  month: 'mo',
  months: 'mo',
  year: 'a',
  years: 'a',
};

/** The UCUM time unit of a duration, from code (preferred) or unit. */
export function timeUnit(quantity: Quantity, element: string): string {
  const raw = quantity.code ?? quantity.unit ?? '';
  const unit = ALIASES[raw] ?? raw;
  if (FIXED_MS[unit] === undefined && CALENDAR[unit] === undefined) {
    throw new UnsupportedElementError(`"${raw}" is not a UCUM time unit (ms, s, min, h, d, wk, mo, a)`, element);
  }
  return unit;
}

/** The calendar units a duration counts in the clinic's own days (whole ones; a fraction is a fixed share of one). */
const CALENDAR: Record<string, { unit: 'days' | 'months'; per: number; fractionMs: number }> = {
  d: { unit: 'days', per: 1, fractionMs: FIXED_MS.d },
  wk: { unit: 'days', per: 7, fractionMs: FIXED_MS.d },
  mo: { unit: 'months', per: 1, fractionMs: 30 * FIXED_MS.d },
  a: { unit: 'months', per: 12, fractionMs: 30 * FIXED_MS.d },
};

/**
 * `instant` moved by `sign * quantity`. Days, weeks, months and years are calendar steps in the clinic's time zone
 * (`zone`): the same wall-clock time that many days later, across a change to or from summer time too, and
 * Jan 31 + 1 mo = Feb 28, as a clinic reads "monthly". A fraction of a day or week is that share of 24 hours, of a
 * month or year 30-day units. Hours and shorter are exact.
 */
export function addDuration(
  instant: number,
  quantity: Quantity | undefined,
  element: string,
  sign = 1,
  zone: string = UTC_ZONE,
): number {
  if (!quantity || quantity.value === undefined) return instant;
  const unit = timeUnit(quantity, element);
  const value = quantity.value * sign;
  const calendar = CALENDAR[unit];
  if (!calendar) return instant + value * FIXED_MS[unit];
  const counted = value * calendar.per;
  const whole = Math.trunc(counted);
  return addClinicCalendar(instant, { [calendar.unit]: whole }, zone) + (counted - whole) * calendar.fractionMs;
}

export function iso(instant: number): string {
  return new Date(instant).toISOString();
}
