/**
 * When a job kept as failed (a dead letter: its attempts spent) is tried again by itself. Queue mechanics, no clinical
 * number: a FHIR server or a mail server down longer than a job's backoff (about 8.5 minutes with the defaults) must
 * not leave a check unrecorded, a session unbooked or an answer unmatched until an operator notices.
 */
export interface RevivalPolicy {
  /** The wait after a job's first failure for good; doubled after each revival that failed again. */
  firstWaitMs: number;
  /** The longest wait between two revivals. */
  longestWaitMs: number;
  /** Past this since its first failure for good, a job is left to an operator (`/operations/dead-letters`). */
  giveUpAfterMs: number;
}

/** A day: a cause that outlasts a day is an operator's to fix, and a daily try still finds it fixed. */
export const LONGEST_REVIVAL_WAIT_MS = 24 * 3600_000;

/** A dead letter's revivals so far, kept in its job's data (`revivals`): a new job for its key starts afresh. */
export interface Revivals {
  /** How often it was tried again by itself. */
  times: number;
  /** When it first failed for good (epoch ms). */
  firstFailedAt: number;
  /** When it was left to an operator (epoch ms), so that is said once. */
  givenUpAt?: number;
}

export type RevivalVerdict =
  /** Its wait ended at `due` (its next look tries it again). */
  | { verdict: 'revive'; due: number }
  | { verdict: 'wait'; until: number }
  /** Past `giveUpAfterMs`: left to an operator; `now` the first time this is found (say it), `before` after that. */
  | { verdict: 'given-up'; now: boolean };

/**
 * What to do with a job that failed for good at `failedAt` (its last attempt), given its revivals so far, at `now`.
 */
export function revivalOf(
  failedAt: number,
  revivals: Revivals | undefined,
  now: number,
  policy: RevivalPolicy,
): RevivalVerdict {
  // Left to an operator once: their retry that fails again is theirs too.
  if (revivals?.givenUpAt !== undefined) return { verdict: 'given-up', now: false };
  const times = revivals?.times ?? 0;
  const firstFailedAt = revivals?.firstFailedAt ?? failedAt;
  if (now - firstFailedAt > policy.giveUpAfterMs) return { verdict: 'given-up', now: true };
  // 2^times without overflow: past about 30 doublings the longest wait has long been reached.
  const wait = Math.min(policy.firstWaitMs * 2 ** Math.min(times, 30), policy.longestWaitMs);
  const due = failedAt + wait;
  return now >= due ? { verdict: 'revive', due } : { verdict: 'wait', until: due };
}
