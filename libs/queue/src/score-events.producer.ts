import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { withinEnqueueTimeout } from './infusion-events.producer';
import { JOBS, reconciledScoreJobId, retryOptions, scoreJobId, type EventSource, type ScoreRecordedJob } from './jobs';
import { QUEUES } from './queue-names';

/**
 * Puts recorded scores (Observations) on the outcomes queue. Evaluating a score again writes nothing when the
 * proposal already says what it would, so a finished job is not kept: a corrected Observation is evaluated anew.
 */
@Injectable()
export class ScoreEventsProducer {
  constructor(
    @InjectQueue(QUEUES.outcomes) private readonly queue: Queue<ScoreRecordedJob>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async enqueue(observationId: string, source: EventSource): Promise<{ jobId: string }> {
    const jobId = scoreJobId(observationId);
    await withinEnqueueTimeout(
      this.queue.add(
        JOBS.scoreRecorded,
        { observationId, source },
        {
          jobId,
          ...retryOptions(this.config),
          removeOnComplete: true,
          removeOnFail: false,
        },
      ),
    );
    return { jobId };
  }

  /**
   * The reconciliation's second look at a score version, whatever became of its event (Redis may have lost it after
   * the API accepted it): evaluated once per version while Redis remembers the job (the reconciliation's lookback),
   * which writes nothing when the event's own job already did the work.
   */
  async enqueueForReconciliation(observationId: string, versionId: string): Promise<{ jobId: string }> {
    const jobId = reconciledScoreJobId(observationId, versionId);
    await withinEnqueueTimeout(
      this.queue.add(
        JOBS.scoreRecorded,
        { observationId, source: 'poll' },
        {
          jobId,
          ...retryOptions(this.config),
          removeOnComplete: { age: Math.ceil(this.config.reconcileLookbackMs / 1000) },
          removeOnFail: false,
        },
      ),
    );
    return { jobId };
  }
}
