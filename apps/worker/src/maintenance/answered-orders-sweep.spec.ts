import { closedTasksFrom } from './answered-orders-sweep';

describe('closedTasksFrom (the Tasks closed elsewhere the reconciliation reads)', () => {
  const now = new Date('2026-12-05T12:00:00Z');
  const config = { pollOverlapMs: 10_000, reconcileLookbackMs: 7 * 24 * 3600_000 };

  it('reads a day back after a sweep 15 minutes ago, so a closing that lost a race is tried again for a day', () => {
    expect(closedTasksFrom(now, '2026-12-05T11:45:00Z', config).toISOString()).toBe('2026-12-04T12:00:00.000Z');
  });

  it('reads back to the last sweep, less the overlap, when it began more than a day ago (a worker down for days)', () => {
    expect(closedTasksFrom(now, '2026-12-01T08:00:00Z', config).toISOString()).toBe('2026-12-01T07:59:50.000Z');
  });

  it('reads the reconciliation lookback when no sweep is on record (a first run, a Redis that lost its data)', () => {
    expect(closedTasksFrom(now, undefined, config).toISOString()).toBe('2026-11-28T12:00:00.000Z');
    expect(closedTasksFrom(now, 'not a date', config).toISOString()).toBe('2026-11-28T12:00:00.000Z');
  });
});
