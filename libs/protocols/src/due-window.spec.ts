import { dueWindow, periodWithin } from './due-window';
import { UnsupportedElementError } from './unsupported';

function thrownElement(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof UnsupportedElementError ? err.element : undefined;
  }
  return undefined;
}

describe('dueWindow', () => {
  const infusion = { start: '2026-03-02T09:00:00.000Z', end: '2026-03-02T10:00:00.000Z' };

  it('puts a 6-8 week booster window after the end of the infusion', () => {
    const window = dueWindow(infusion, {
      relationship: 'after-end',
      offsetRange: { low: { value: 6, code: 'wk' }, high: { value: 8, code: 'wk' } },
    });
    expect(window).toEqual({ start: '2026-04-13T10:00:00.000Z', end: '2026-04-27T10:00:00.000Z' });
  });

  it('puts a before-start window ahead of the anchor', () => {
    const window = dueWindow(infusion, {
      relationship: 'before-start',
      offsetRange: { low: { value: 0, code: 'd' }, high: { value: 2, code: 'd' } },
    });
    expect(window).toEqual({ start: '2026-02-28T09:00:00.000Z', end: '2026-03-02T09:00:00.000Z' });
  });

  it('months and years are calendar steps (end of month clamps)', () => {
    const end = { start: '2027-01-31T10:00:00.000Z', end: '2027-01-31T10:00:00.000Z' };
    expect(
      dueWindow(end, {
        relationship: 'after-end',
        offsetRange: { low: { value: 1, code: 'mo' }, high: { value: 1, code: 'a' } },
      }),
    ).toEqual({
      start: '2027-02-28T10:00:00.000Z',
      end: '2028-01-31T10:00:00.000Z',
    });
  });

  it('refuses a unit that is not a time unit, naming the element', () => {
    const anchor = { start: '2027-01-31T10:00:00.000Z', end: '2027-01-31T10:00:00.000Z' };
    expect(() =>
      dueWindow(
        anchor,
        { relationship: 'after-end', offsetDuration: { value: 1, code: 'kg' } },
        'PlanDefinition.action[0].relatedAction[0]',
      ),
    ).toThrow(UnsupportedElementError);
    expect(
      thrownElement(() =>
        dueWindow(
          anchor,
          { relationship: 'after-end', offsetDuration: { value: 1, code: 'kg' } },
          'PlanDefinition.action[0].relatedAction[0]',
        ),
      ),
    ).toBe('PlanDefinition.action[0].relatedAction[0]');
  });

  it('checks containment of periods', () => {
    const outer = { start: '2026-04-13T10:00:00.000Z', end: '2026-04-27T10:00:00.000Z' };
    expect(periodWithin({ start: '2026-04-14T00:00:00.000Z', end: '2026-04-20T00:00:00.000Z' }, outer)).toBe(true);
    expect(periodWithin({ start: '2026-04-10T00:00:00.000Z', end: '2026-04-20T00:00:00.000Z' }, outer)).toBe(false);
  });
});
