import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { QUEUES } from './queue-names';
import { didNothing, infusionJobId, JOBS, retryOptions, type EventSource, type InfusionCompletedJob } from './jobs';

/** How long an API request waits for Redis before it answers 503 instead of hanging. */
export const ENQUEUE_TIMEOUT_MS = 1000;

/** Redis did not take the event in time: the caller answers 503 with Retry-After, the sender tries again. */
export class QueueUnavailableError extends Error {}

/**
 * Puts completed-infusion events on the follow-up queue, deduplicated by Procedure id while the work is pending or
 * done. A job that did nothing (ignored) or was dead-lettered does not deduplicate: the new event replaces or
 * revives it, so nobody can hold back an infusion's follow-ups by naming its id early.
 */
@Injectable()
export class InfusionEventsProducer {
  constructor(
    @InjectQueue(QUEUES.followups) private readonly queue: Queue<InfusionCompletedJob>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async enqueue(procedureId: string, source: EventSource): Promise<{ jobId: string }> {
    const jobId = infusionJobId(procedureId);
    await withinEnqueueTimeout(this.add(procedureId, source, jobId));
    return { jobId };
  }

  /**
   * The infusion followed up again, for a pump record charted after its follow-up ran (the session it gave was left
   * open): once that run completed, its job is added again (a pending one reads the record when it runs). Idempotent
   * like any duplicate event: the Tasks' keys keep one set, and what the record changes is judged afresh. Not while
   * that follow-up is running (`running`): it may have read before the record, and BullMQ keeps one job per id, so an
   * add now would be dropped; the caller asks again once it has finished (before session 42 the ask was lost).
   */
  async followUpAgain(procedureId: string): Promise<{ jobId: string; running: boolean }> {
    const jobId = infusionJobId(procedureId);
    const running = await withinEnqueueTimeout(this.isRunning(jobId));
    if (!running) await withinEnqueueTimeout(this.add(procedureId, 'pump-record', jobId, true));
    return { jobId, running };
  }

  /**
   * Whether the infusion's follow-up is running now: it may have read the infusion before a change the caller heard of,
   * and write what it planned from that read after the caller looked.
   */
  async isFollowingUp(procedureId: string): Promise<boolean> {
    return withinEnqueueTimeout(this.isRunning(infusionJobId(procedureId)));
  }

  private async isRunning(jobId: string): Promise<boolean> {
    return (await this.queue.getJobState(jobId)) === 'active';
  }

  private async add(procedureId: string, source: EventSource, jobId: string, again = false): Promise<void> {
    const earlier = await this.queue.getJob(jobId);
    if (earlier && (await earlier.isFailed())) {
      // With all its attempts (a plain retry keeps those spent: one attempt).
      await earlier.retry('failed', { resetAttemptsMade: true });
      return;
    }
    if (earlier && (again || didNothing(earlier.returnvalue)) && (await earlier.isCompleted())) await earlier.remove();
    await this.queue.add(
      JOBS.infusionCompleted,
      { procedureId, source },
      {
        jobId,
        ...retryOptions(this.config),
        // Completed ids are kept a week so a late duplicate is recognised without work; the Tasks' own keys make
        // even a later re-delivery harmless.
        removeOnComplete: { age: 7 * 24 * 3600 },
        removeOnFail: false,
      },
    );
  }
}

/**
 * Redis down: ioredis would hold the command until it reconnects (tens of seconds). The request answers now; the
 * command may still run on reconnect, which the job id makes harmless.
 */
export async function withinEnqueueTimeout<T>(work: Promise<T>, ms = ENQUEUE_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new QueueUnavailableError(`Redis did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A queue read or change on behalf of a request (an operator's page, a scrape): refused at once when the queue's
 * Redis connection is not up, else given ENQUEUE_TIMEOUT_MS. Its connection holds commands until Redis is back (the
 * workers need that), which held these requests as long.
 */
export async function whileQueueConnected<T>(queue: Pick<Queue, 'client'>, work: () => Promise<T>): Promise<T> {
  if ((await queue.client).status !== 'ready') throw new QueueUnavailableError('Redis is not connected');
  return withinEnqueueTimeout(work());
}
