import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { withinEnqueueTimeout } from './infusion-events.producer';
import { JOBS, reconciledScoreJobId, retryOptions, scoreJobId, type EventSource, type ScoreRecordedJob } from './jobs';
import { addKeyed } from './keyed-jobs';
import { QUEUES } from './queue-names';

/**
 * Puts recorded scores (Observations) on the outcomes queue. Evaluating a score again writes nothing when the
 * proposal already says what it would, so a finished job is not kept: a corrected Observation is evaluated anew.
 */
@Injectable()
export class ScoreEventsProducer {
  private readonly logger = new Logger(ScoreEventsProducer.name);

  constructor(
    @InjectQueue(QUEUES.outcomes) private readonly queue: Queue<ScoreRecordedJob>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async enqueue(observationId: string, source: EventSource): Promise<{ jobId: string }> {
    return this.add(observationId, source, scoreJobId(observationId), true);
  }

  /**
   * Each score, for a writer whose write already stands (a recorded check): one the queue does not take is logged and
   * left to the score polling, which finds every recorded score.
   */
  async enqueueEach(observationIds: string[], source: EventSource): Promise<void> {
    for (const id of observationIds) {
      try {
        await this.enqueue(id, source);
      } catch (err) {
        this.logger.warn({
          msg: 'score event not queued; the score polling will find it',
          observation: id,
          err: String(err),
        });
      }
    }
  }

  /**
   * The reconciliation's second look at a score version, whatever became of its event (Redis may have lost it after
   * the API accepted it): evaluated once per version while Redis remembers the job (the reconciliation's lookback),
   * which writes nothing when the event's own job already did the work.
   */
  async enqueueForReconciliation(observationId: string, versionId: string): Promise<{ jobId: string }> {
    const keep = { age: Math.ceil(this.config.reconcileLookbackMs / 1000) };
    return this.add(observationId, 'poll', reconciledScoreJobId(observationId, versionId), keep);
  }

  private async add(
    observationId: string,
    source: EventSource,
    jobId: string,
    removeOnComplete: true | { age: number },
  ): Promise<{ jobId: string }> {
    const queued = await withinEnqueueTimeout(
      addKeyed(
        this.queue,
        JOBS.scoreRecorded,
        { observationId, source },
        { jobId, ...retryOptions(this.config), removeOnComplete, removeOnFail: false },
      ),
    );
    return { jobId: queued };
  }
}
