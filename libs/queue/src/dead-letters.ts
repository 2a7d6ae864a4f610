import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Job, Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { LONGEST_REVIVAL_WAIT_MS, revivalOf, type RevivalPolicy, type Revivals } from './dead-letter-revival';
import { JOBS, jobAbout, type InfusionCompletedJob } from './jobs';
import { QUEUES } from './queue-names';

/** A job kept as failed, as an operator reads it: ids only, no patient data. */
export interface DeadLetter {
  queue: string;
  /** The kind of job (`check-answered-elsewhere`). */
  name: string;
  jobId: string;
  /** What it is about (`QuestionnaireResponse/123`); none for a sweep. */
  about?: string;
  /** An infusion event's Procedure and where it came from, as the view named them before every queue was in it. */
  procedure?: string;
  source?: string;
  attemptsMade: number;
  failedReason: string;
  failedAt?: string;
  /** How often it was tried again by itself. */
  revived: number;
  /** When it is next tried again by itself (revival on, not given up). */
  nextRevivalAt?: string;
  /** Past DEAD_LETTER_REVIVAL_FOR_MS from its first failure: left to an operator's retry. */
  givenUp?: boolean;
}

/** A dead letter of one kind: what it is about (`Procedure/<id>`, from its payload), since when it has failed for good. */
export interface FailingJob {
  about: string;
  failingSince: number;
}

/**
 * Where a job stands: still failed for good; being tried again (waiting, running); run to the end (what it returned);
 * or gone (removed by an operator, or by BullMQ after its completed jobs' time).
 */
export type JobStanding = { state: 'failed' | 'retrying' | 'gone' } | { state: 'ran'; returned: unknown };

/** One look at every queue's dead letters: how many were tried again, are still waiting, were given up now. */
export interface RevivalRun {
  revived: Record<string, number>;
  waiting: number;
  givenUp: Record<string, number>;
}

/** Failed jobs are read a page at a time (a long outage leaves thousands). */
const PAGE = 500;

/**
 * The jobs of every queue kept as failed (their attempts spent), for an operator to read and retry, and tried again by
 * themselves on a doubling schedule (`revivalOf`) until DEAD_LETTER_REVIVAL_FOR_MS has passed. Every job here reads
 * the FHIR server as it is when it runs, so running it again does what is still to do and writes nothing twice.
 * Before session 55 only the follow-up queue's were listed, and a job that failed for good stayed so until an operator
 * retried it, or (since session 54) its resource changed again or a sweep of its kind found it: a portal's answers
 * or an appointment booked during a FHIR server's outage were never acted on.
 */
@Injectable()
export class DeadLetters {
  private readonly logger = new Logger(DeadLetters.name);
  private readonly queues: Queue[];

  constructor(
    @InjectQueue(QUEUES.followups) followups: Queue,
    @InjectQueue(QUEUES.outcomes) outcomes: Queue,
    @InjectQueue(QUEUES.reminders) reminders: Queue,
    @InjectQueue(QUEUES.maintenance) maintenance: Queue,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'deadLetterRevivalMs' | 'deadLetterRevivalForMs'>,
  ) {
    this.queues = [followups, outcomes, reminders, maintenance];
  }

  /** The newest `limit` dead letters of every queue, newest first. */
  async list(now = Date.now(), limit = 200): Promise<DeadLetter[]> {
    const failed = (await Promise.all(this.queues.map((queue) => queue.getFailed(0, limit - 1)))).flat();
    return failed
      .sort((a, b) => (b.finishedOn ?? 0) - (a.finishedOn ?? 0))
      .slice(0, limit)
      .map((job) => this.describe(job, now));
  }

  /**
   * The jobs of these names kept as failed now (their attempts spent), with when each first failed for good: a
   * revival that failed again keeps the first failure. Not those given up (left to an operator after a week).
   */
  async failing(queueName: string, jobNames: string[]): Promise<FailingJob[]> {
    const queue = this.queueNamed(queueName);
    return (await this.failedOf(queue)).flatMap((job) => {
      const mine = jobNames.includes(job.name) && revivalsOf(job)?.givenUpAt === undefined;
      const about = mine ? jobAbout(job.data) : undefined;
      return about ? [{ about, failingSince: revivalsOf(job)?.firstFailedAt ?? job.finishedOn ?? job.timestamp }] : [];
    });
  }

  /** Where a job stands now, by its id. */
  async standing(queueName: string, jobId: string): Promise<JobStanding> {
    const job = await this.queueNamed(queueName).getJob(jobId);
    if (!job) return { state: 'gone' };
    const state = await job.getState();
    if (state === 'failed') return { state: 'failed' };
    if (state === 'completed') return { state: 'ran', returned: job.returnvalue };
    return { state: state === 'unknown' ? 'gone' : 'retrying' };
  }

  private queueNamed(name: string): Queue {
    const queue = this.queues.find((q) => q.name === name);
    if (!queue) throw new Error(`no queue ${name}`);
    return queue;
  }

  /**
   * An operator's retry, with all its attempts (BullMQ's plain retry keeps the attempts spent, so a job retried while
   * its cause still flickers had one). Its revivals so far stand.
   */
  async retry(jobId: string): Promise<'queued' | 'not-found' | 'not-failed'> {
    for (const queue of this.queues) {
      const job = await queue.getJob(jobId);
      if (!job) continue;
      if (!(await job.isFailed())) return 'not-failed';
      await job.retry('failed', { resetAttemptsMade: true });
      return 'queued';
    }
    return 'not-found';
  }

  /**
   * Tries again, with all their attempts, the dead letters whose wait is over; says once of those given up.
   * `progress`: the share of the queues looked at (the job's progress on the dashboard: a long outage leaves thousands).
   */
  async revive(now = Date.now(), progress?: (percent: number) => Promise<unknown>): Promise<RevivalRun> {
    const run: RevivalRun = { revived: {}, waiting: 0, givenUp: {} };
    const policy = this.policy();
    if (!policy) return run;
    for (const queue of this.queues) {
      for (const job of await this.failedOf(queue)) {
        // A scheduler's run (a sweep, a poll): its next run does the same.
        if (job.repeatJobKey) continue;
        const revivals = revivalsOf(job);
        const failedAt = job.finishedOn ?? now;
        const verdict = revivalOf(failedAt, revivals, now, policy);
        if (verdict.verdict === 'wait') run.waiting++;
        else if (verdict.verdict === 'revive') {
          const times = (revivals?.times ?? 0) + 1;
          if (await this.tryAgain(job, { times, firstFailedAt: revivals?.firstFailedAt ?? failedAt })) {
            run.revived[queue.name] = (run.revived[queue.name] ?? 0) + 1;
            this.logger.log({ msg: 'dead letter tried again', queue: queue.name, job: job.id, times });
          }
        } else if (verdict.now) {
          await this.givenUp(job, revivals, failedAt, now);
          run.givenUp[queue.name] = (run.givenUp[queue.name] ?? 0) + 1;
        }
      }
      await progress?.(Math.round((100 * (this.queues.indexOf(queue) + 1)) / this.queues.length));
    }
    return run;
  }

  private policy(): RevivalPolicy | undefined {
    const { deadLetterRevivalMs, deadLetterRevivalForMs } = this.config;
    if (deadLetterRevivalMs <= 0) return undefined;
    return {
      firstWaitMs: deadLetterRevivalMs,
      longestWaitMs: Math.max(deadLetterRevivalMs, LONGEST_REVIVAL_WAIT_MS),
      giveUpAfterMs: deadLetterRevivalForMs,
    };
  }

  /** Every dead letter of a queue, read before any is retried (a retry moves it out of the set being paged). */
  private async failedOf(queue: Queue): Promise<Job[]> {
    const count = await queue.getFailedCount();
    const jobs: Job[] = [];
    for (let start = 0; start < count; start += PAGE) jobs.push(...(await queue.getFailed(start, start + PAGE - 1)));
    return jobs;
  }

  /** False when the job changed meanwhile: queued again by a new event (addKeyed), retried by an operator, removed. */
  private async tryAgain(job: Job, revivals: Revivals): Promise<boolean> {
    try {
      await job.updateData({ ...(job.data as object), revivals });
      await job.retry('failed', { resetAttemptsMade: true });
      return true;
    } catch (err) {
      this.logger.debug({ msg: 'dead letter changed before its revival', job: job.id, error: String(err) });
      return false;
    }
  }

  private async givenUp(job: Job, revivals: Revivals | undefined, failedAt: number, now: number): Promise<void> {
    const given: Revivals = {
      times: revivals?.times ?? 0,
      firstFailedAt: revivals?.firstFailedAt ?? failedAt,
      givenUpAt: now,
    };
    await job.updateData({ ...(job.data as object), revivals: given }).catch(() => undefined);
    this.logger.warn({
      msg: 'dead letter given up: retry it from /operations/dead-letters once its cause is fixed',
      queue: job.queueName,
      job: job.id,
      revived: given.times,
      failedReason: job.failedReason,
    });
  }

  private describe(job: Job, now: number): DeadLetter {
    const revivals = revivalsOf(job);
    const policy = this.policy();
    const verdict = policy && !job.repeatJobKey ? revivalOf(job.finishedOn ?? now, revivals, now, policy) : undefined;
    const infusion = job.name === JOBS.infusionCompleted ? (job.data as InfusionCompletedJob) : undefined;
    return {
      queue: job.queueName,
      name: job.name,
      jobId: job.id!,
      about: jobAbout(job.data),
      ...(infusion ? { procedure: `Procedure/${infusion.procedureId}`, source: infusion.source } : {}),
      attemptsMade: job.attemptsMade,
      failedReason: job.failedReason,
      failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : undefined,
      revived: revivals?.times ?? 0,
      // Past for one whose wait is over: tried again at the worker's next look.
      ...(verdict?.verdict === 'wait' ? { nextRevivalAt: new Date(verdict.until).toISOString() } : {}),
      ...(verdict?.verdict === 'revive' ? { nextRevivalAt: new Date(verdict.due).toISOString() } : {}),
      ...(verdict?.verdict === 'given-up' ? { givenUp: true } : {}),
    };
  }
}

function revivalsOf(job: Job): Revivals | undefined {
  return (job.data as { revivals?: Revivals } | undefined)?.revivals;
}
