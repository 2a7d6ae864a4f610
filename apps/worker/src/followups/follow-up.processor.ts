import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { ManagedWorker, QUEUES, type InfusionCompletedJob, type JobHandler } from '@kc/queue';
import { FollowUpService, type FollowUpOutcome } from './follow-up.service';
import { FollowUpMetrics } from './follow-up.metrics';

/** Queue mechanics only: the business logic is FollowUpService's, the rules libs/followups'. */
@Injectable()
export class FollowUpProcessor implements JobHandler<InfusionCompletedJob, FollowUpOutcome> {
  private readonly logger = new Logger(FollowUpProcessor.name);

  constructor(
    private readonly followUps: FollowUpService,
    private readonly metrics: FollowUpMetrics,
  ) {}

  async process(job: Job<InfusionCompletedJob>): Promise<FollowUpOutcome> {
    const stop = this.metrics.jobSeconds.startTimer();
    try {
      const outcome = await this.followUps.handle(job.data.procedureId, (percent) => job.updateProgress(percent));
      await job.updateProgress(100);
      this.metrics.jobs.inc({ result: outcome.status });
      return outcome;
    } finally {
      stop();
    }
  }

  onFailed(job: Job<InfusionCompletedJob>, error: Error, final: boolean): void {
    this.metrics.jobs.inc({ result: 'failed' });
    this.logger.warn({ msg: final ? 'follow-up job dead-lettered' : 'follow-up job failed, will retry', job: job.id, attempt: job.attemptsMade, error: error.message });
  }
}

@Injectable()
export class FollowUpWorker extends ManagedWorker<InfusionCompletedJob, FollowUpOutcome> {
  constructor(@Inject(APP_CONFIG) config: AppConfig, processor: FollowUpProcessor) {
    super(QUEUES.followups, config, processor);
  }
}
