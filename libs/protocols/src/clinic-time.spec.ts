import { addDuration } from './calendar';
import {
  addClinicCalendar,
  clinicDateTime,
  clinicDay,
  clinicDays,
  clinicInstant,
  clinicPeriod,
  whenInWords,
} from './clinic-time';
import { dueWindow } from './due-window';

const NEW_YORK = 'America/New_York';
const ms = (iso: string) => Date.parse(iso);

describe("the clinic's calendar", () => {
  it('a day given alone starts at midnight in the clinic; a dateTime keeps its own instant', () => {
    expect(clinicInstant('2027-01-04', NEW_YORK)?.toISOString()).toBe('2027-01-04T05:00:00.000Z');
    expect(clinicInstant('2027-07-04', NEW_YORK)?.toISOString()).toBe('2027-07-04T04:00:00.000Z');
    expect(clinicInstant('2027-01-04')?.toISOString()).toBe('2027-01-04T00:00:00.000Z');
    expect(clinicInstant('2027-01-04T09:30:00Z', NEW_YORK)?.toISOString()).toBe('2027-01-04T09:30:00.000Z');
    expect(clinicInstant('2027-01-04T09:30:00+01:00', NEW_YORK)?.toISOString()).toBe('2027-01-04T08:30:00.000Z');
    expect(clinicInstant('2027-02-30', NEW_YORK)).toBeUndefined();
    expect(clinicInstant('soon', NEW_YORK)).toBeUndefined();
  });

  it("an instant's day and time as the clinic reads them", () => {
    // 03:00 UTC on the 5th is still the evening of the 4th in New York.
    expect(clinicDay('2027-01-05T03:00:00Z', NEW_YORK)).toBe('2027-01-04');
    expect(clinicDay('2027-01-05T03:00:00Z')).toBe('2027-01-05');
    expect(clinicDateTime('2027-01-05T03:00:00Z', NEW_YORK)).toBe('2027-01-04 22:00');
    expect(clinicDateTime(ms('2027-07-05T03:00:00Z'), NEW_YORK)).toBe('2027-07-04 23:00');
    // A date alone (a condition's onset) is a calendar date already: kept as written, not moved a day west.
    expect(clinicDay('2026-10-01', NEW_YORK)).toBe('2026-10-01');
    expect(clinicDateTime('2026-10', NEW_YORK)).toBe('2026-10');
    expect(clinicDay(undefined, NEW_YORK)).toBeUndefined();
    expect(clinicDay('not a date', NEW_YORK)).toBeUndefined();
  });

  it("a period's instants, its zone named; an open end read as such", () => {
    const period = { start: '2027-01-06T15:00:00Z', end: '2027-01-08T15:00:00Z' };
    expect(clinicPeriod(period)).toBe('2027-01-06 15:00 .. 2027-01-08 15:00 (UTC)');
    expect(clinicPeriod(period, NEW_YORK)).toBe('2027-01-06 10:00 .. 2027-01-08 10:00 (America/New_York)');
    expect(clinicPeriod({ start: period.start })).toBe('2027-01-06 15:00 .. … (UTC)');
  });

  it("a window's days: whole days end the day before their closing midnight; any other end is its own day", () => {
    expect(clinicDays({ start: '2027-03-02T05:00:00Z', end: '2027-03-15T04:00:00Z' }, NEW_YORK)).toBe(
      '2027-03-02 to 2027-03-14',
    );
    expect(clinicDays({ start: '2027-03-01T05:00:00Z', end: '2027-03-02T05:00:00Z' }, NEW_YORK)).toBe('2027-03-01');
    expect(clinicDays({ start: '2027-01-06T10:00:00Z', end: '2027-01-08T10:00:00Z' })).toBe('2027-01-06 to 2027-01-08');
    expect(clinicDays({ start: '2027-01-06T10:00:00Z' })).toBe('2027-01-06 to …');
    expect(clinicDays({ end: '2027-01-06T10:00:00Z' })).toBe('… to 2027-01-06');
    // An instant at midnight: its day, not the day before.
    expect(clinicDays({ start: '2027-01-06T00:00:00Z', end: '2027-01-06T00:00:00Z' })).toBe('2027-01-06');
  });

  it('when a window is, for a patient: a booked slot with its time, a whole day, or the days it spans', () => {
    expect(whenInWords({ start: '2027-01-05T09:00:00Z', end: '2027-01-05T12:00:00Z' })).toBe(
      'is booked for Tuesday 5 January 2027 at 09:00 UTC',
    );
    expect(whenInWords({ start: '2027-03-15T13:00:00Z', end: '2027-03-15T16:00:00Z' }, NEW_YORK)).toBe(
      'is booked for Monday 15 March 2027 at 09:00 EDT',
    );
    expect(whenInWords({ start: '2027-03-01T05:00:00Z', end: '2027-03-02T05:00:00Z' }, NEW_YORK)).toBe(
      'is planned for Monday 1 March 2027',
    );
    expect(whenInWords({ start: '2027-03-02T05:00:00Z', end: '2027-03-15T04:00:00Z' }, NEW_YORK)).toBe(
      'is due between Tuesday 2 March and Sunday 14 March 2027',
    );
    expect(whenInWords({ start: '2027-01-06T10:00:00Z', end: '2027-01-08T10:00:00Z' })).toBe(
      'is due between Wednesday 6 January and Friday 8 January 2027',
    );
    expect(whenInWords({ start: '2026-12-30T10:00:00Z', end: '2027-01-02T10:00:00Z' })).toBe(
      'is due between Wednesday 30 December 2026 and Saturday 2 January 2027',
    );
    expect(whenInWords({ start: '2027-01-06T10:00:00Z' })).toBeUndefined();
  });

  it('days, weeks and months are calendar steps in the clinic, across the change to summer time too', () => {
    // Midnight on 1 March in New York (EST), two weeks on: midnight on 15 March (EDT since the 14th, a 23-hour day).
    const march1 = ms('2027-03-01T05:00:00Z');
    expect(new Date(addClinicCalendar(march1, { weeks: 2 }, NEW_YORK)).toISOString()).toBe('2027-03-15T04:00:00.000Z');
    expect(new Date(addDuration(march1, { value: 14, code: 'd' }, 'x', 1, NEW_YORK)).toISOString()).toBe(
      '2027-03-15T04:00:00.000Z',
    );
    // In UTC a day is 24 hours, as before.
    expect(addDuration(march1, { value: 14, code: 'd' }, 'x')).toBe(march1 + 14 * 86_400_000);
    // Months end-clamped, in the clinic; fractions a share of the unit; hours exact.
    expect(
      new Date(addDuration(ms('2027-01-31T05:00:00Z'), { value: 1, code: 'mo' }, 'x', 1, NEW_YORK)).toISOString(),
    ).toBe('2027-02-28T05:00:00.000Z');
    expect(addDuration(march1, { value: 1.5, code: 'd' }, 'x', 1, NEW_YORK)).toBe(
      addClinicCalendar(march1, { days: 1 }, NEW_YORK) + 12 * 3_600_000,
    );
    expect(addDuration(march1, { value: 6, code: 'h' }, 'x', -1, NEW_YORK)).toBe(march1 - 6 * 3_600_000);
  });

  it("a protocol's window counted from midnight stays on the clinic's midnights", () => {
    const window = dueWindow(
      { start: '2027-03-01T05:00:00.000Z', end: '2027-03-02T05:00:00.000Z' },
      {
        relationship: 'after-start',
        offsetRange: { low: { value: 2, code: 'wk' }, high: { value: 3, code: 'wk' } },
      },
      'relatedAction',
      NEW_YORK,
    );
    expect(window).toEqual({ start: '2027-03-15T04:00:00.000Z', end: '2027-03-22T04:00:00.000Z' });
    expect([clinicDateTime(window.start, NEW_YORK), clinicDateTime(window.end, NEW_YORK)]).toEqual([
      '2027-03-15 00:00',
      '2027-03-22 00:00',
    ]);
  });
});
