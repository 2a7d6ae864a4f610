import type { Quantity } from '@medplum/fhirtypes';
import { UnsupportedElementError } from './unsupported';

const FIXED_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  wk: 7 * 86_400_000,
};
const MONTHS: Record<string, number> = { mo: 1, a: 12 };
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
  if (FIXED_MS[unit] === undefined && MONTHS[unit] === undefined) {
    throw new UnsupportedElementError(`"${raw}" is not a UCUM time unit (ms, s, min, h, d, wk, mo, a)`, element);
  }
  return unit;
}

/**
 * `instant` moved by `sign * quantity`. Months and years are calendar steps (Jan 31 + 1 mo = Feb 28), as a
 * clinic reads "monthly"; fractional months are taken as 30-day units for the fraction.
 */
export function addDuration(instant: number, quantity: Quantity | undefined, element: string, sign = 1): number {
  if (!quantity || quantity.value === undefined) return instant;
  const unit = timeUnit(quantity, element);
  const value = quantity.value * sign;
  if (FIXED_MS[unit] !== undefined) return instant + value * FIXED_MS[unit];
  const months = value * MONTHS[unit];
  const whole = Math.trunc(months);
  return addMonths(instant, whole) + (months - whole) * 30 * FIXED_MS.d;
}

function addMonths(instant: number, months: number): number {
  const date = new Date(instant);
  const day = date.getUTCDate();
  date.setUTCDate(1);
  date.setUTCMonth(date.getUTCMonth() + months);
  const lastDay = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
  date.setUTCDate(Math.min(day, lastDay));
  return date.getTime();
}

export function iso(instant: number): string {
  return new Date(instant).toISOString();
}
