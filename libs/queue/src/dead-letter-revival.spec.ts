import { LONGEST_REVIVAL_WAIT_MS, revivalOf, type RevivalPolicy } from './dead-letter-revival';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const policy: RevivalPolicy = {
  firstWaitMs: 15 * MINUTE,
  longestWaitMs: LONGEST_REVIVAL_WAIT_MS,
  giveUpAfterMs: 7 * DAY,
};
const failedAt = Date.parse('2027-01-04T10:00:00Z');

describe('revivalOf: when a job kept as failed is tried again by itself', () => {
  it('first after the first wait', () => {
    expect(revivalOf(failedAt, undefined, failedAt + 14 * MINUTE, policy)).toEqual({
      verdict: 'wait',
      until: failedAt + 15 * MINUTE,
    });
    expect(revivalOf(failedAt, undefined, failedAt + 20 * MINUTE, policy)).toEqual({
      verdict: 'revive',
      due: failedAt + 15 * MINUTE,
    });
  });

  it('waits twice as long after each revival that failed again, up to a day', () => {
    const first = failedAt - HOUR;
    const after = (times: number) => revivalOf(failedAt, { times, firstFailedAt: first }, failedAt, policy);
    expect(after(1)).toEqual({ verdict: 'wait', until: failedAt + 30 * MINUTE });
    expect(after(2)).toEqual({ verdict: 'wait', until: failedAt + HOUR });
    expect(after(6)).toEqual({ verdict: 'wait', until: failedAt + 16 * HOUR });
    expect(after(7)).toEqual({ verdict: 'wait', until: failedAt + DAY });
    expect(after(1000)).toEqual({ verdict: 'wait', until: failedAt + DAY });
    expect(revivalOf(failedAt, { times: 2, firstFailedAt: first }, failedAt + HOUR, policy)).toEqual({
      verdict: 'revive',
      due: failedAt + HOUR,
    });
  });

  it('gives up past its limit from the first failure for good, and says so once', () => {
    const first = failedAt - 7 * DAY;
    expect(revivalOf(failedAt, { times: 9, firstFailedAt: first }, failedAt + DAY, policy)).toEqual({
      verdict: 'given-up',
      now: true,
    });
    expect(
      revivalOf(failedAt, { times: 9, firstFailedAt: first, givenUpAt: failedAt + DAY }, failedAt + 2 * DAY, policy),
    ).toEqual({ verdict: 'given-up', now: false });
    // Whenever it is asked after that (an operator's retry that failed again).
    expect(
      revivalOf(failedAt, { times: 9, firstFailedAt: first, givenUpAt: failedAt }, failedAt - 6 * DAY, policy),
    ).toEqual({ verdict: 'given-up', now: false });
    // Never revived, failed for good longer ago than the limit (revival off until now): given up at once.
    expect(revivalOf(failedAt, undefined, failedAt + 8 * DAY, policy)).toEqual({ verdict: 'given-up', now: true });
  });
});
