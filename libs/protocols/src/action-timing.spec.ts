import type { PlanDefinitionAction } from '@medplum/fhirtypes';
import { notBefore, windowFromTiming } from './action-timing';
import { UnsupportedElementError } from './unsupported';

const start = Date.parse('2027-01-31T08:00:00.000Z');
const window = (action: Partial<PlanDefinitionAction>, birthDate?: string) =>
  windowFromTiming(action, start, birthDate, 'action')?.window;

describe('timing[x] to a due window', () => {
  it.each<[string, Partial<PlanDefinitionAction>, { start: string; end: string }]>([
    [
      'dateTime (the rest of that day)',
      { timingDateTime: '2027-03-01T09:00:00Z' },
      { start: '2027-03-01T09:00:00.000Z', end: '2027-03-02T09:00:00.000Z' },
    ],
    [
      'Period',
      { timingPeriod: { start: '2027-03-01T00:00:00Z', end: '2027-03-05T00:00:00Z' } },
      { start: '2027-03-01T00:00:00.000Z', end: '2027-03-05T00:00:00.000Z' },
    ],
    [
      'Duration (within it from the start)',
      { timingDuration: { value: 2, code: 'wk' } },
      { start: '2027-01-31T08:00:00.000Z', end: '2027-02-14T08:00:00.000Z' },
    ],
    [
      'Range of offsets in hours',
      { timingRange: { low: { value: 1, code: 'h' }, high: { value: 36, code: 'h' } } },
      { start: '2027-01-31T09:00:00.000Z', end: '2027-02-01T20:00:00.000Z' },
    ],
    [
      'Range in calendar months (Jan 31 + 1 mo = Feb 28)',
      { timingRange: { low: { value: 1, code: 'mo' }, high: { value: 2, code: 'mo' } } },
      { start: '2027-02-28T08:00:00.000Z', end: '2027-03-31T08:00:00.000Z' },
    ],
    [
      'Timing monthly x 8',
      { timingTiming: { repeat: { count: 8, frequency: 1, period: 1, periodUnit: 'mo' } } },
      { start: '2027-01-31T08:00:00.000Z', end: '2027-09-30T08:00:00.000Z' },
    ],
    [
      'Timing twice a week x 6',
      { timingTiming: { repeat: { count: 6, frequency: 2, period: 1, periodUnit: 'wk' } } },
      { start: '2027-01-31T08:00:00.000Z', end: '2027-02-21T08:00:00.000Z' },
    ],
    [
      'Timing with boundsDuration',
      {
        timingTiming: {
          repeat: { frequency: 1, period: 1, periodUnit: 'd', boundsDuration: { value: 10, code: 'd' } },
        },
      },
      { start: '2027-01-31T08:00:00.000Z', end: '2027-02-10T08:00:00.000Z' },
    ],
    [
      'Timing with boundsPeriod',
      { timingTiming: { repeat: { boundsPeriod: { start: '2027-02-01T00:00:00Z', end: '2027-02-03T00:00:00Z' } } } },
      { start: '2027-02-01T00:00:00.000Z', end: '2027-02-03T00:00:00.000Z' },
    ],
    [
      'Timing with boundsRange',
      { timingTiming: { repeat: { boundsRange: { high: { value: 1, code: 'a' } } } } },
      { start: '2027-01-31T08:00:00.000Z', end: '2028-01-31T08:00:00.000Z' },
    ],
    [
      'Timing with events',
      { timingTiming: { event: ['2027-02-10T10:00:00Z', '2027-02-03T10:00:00Z'] } },
      { start: '2027-02-03T10:00:00.000Z', end: '2027-02-11T10:00:00.000Z' },
    ],
  ])('%s', (_name, action, expected) => {
    expect(window(action)).toEqual(expected);
  });

  it('Age: the year of life that starts at that age', () => {
    expect(window({ timingAge: { value: 50, code: 'a' } }, '1977-05-10')).toEqual({
      start: '2027-05-10T00:00:00.000Z',
      end: '2028-05-10T00:00:00.000Z',
    });
    expect(() => window({ timingAge: { value: 50, code: 'a' } })).toThrow(UnsupportedElementError);
  });

  it('a repeating schedule goes on the request as it is', () => {
    const timing = { repeat: { count: 8, frequency: 1, period: 1, periodUnit: 'mo' as const } };
    expect(windowFromTiming({ timingTiming: timing }, start, undefined, 'action')?.timing).toBe(timing);
  });

  it('no timing: undefined (relatedAction or the plan start decide)', () => {
    expect(window({})).toBeUndefined();
  });

  it('a window that ended before the Task is created keeps its length from now; a later one is untouched', () => {
    const created = Date.parse('2027-03-01T00:00:00Z');
    expect(notBefore({ start: '2027-01-01T00:00:00.000Z', end: '2027-01-08T00:00:00.000Z' }, created)).toEqual({
      start: '2027-03-01T00:00:00.000Z',
      end: '2027-03-08T00:00:00.000Z',
    });
    const future = { start: '2027-02-20T00:00:00.000Z', end: '2027-03-05T00:00:00.000Z' };
    expect(notBefore(future, created)).toBe(future);
  });
});
