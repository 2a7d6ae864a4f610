import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { QUEUES } from './queue-names';
import { infusionJobId, JOBS, type EventSource, type InfusionCompletedJob } from './jobs';

/** Puts completed-infusion events on the follow-up queue, deduplicated by Procedure id. */
@Injectable()
export class InfusionEventsProducer {
  constructor(
    @InjectQueue(QUEUES.followups) private readonly queue: Queue<InfusionCompletedJob>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async enqueue(procedureId: string, source: EventSource): Promise<{ jobId: string }> {
    const jobId = infusionJobId(procedureId);
    await this.queue.add(
      JOBS.infusionCompleted,
      { procedureId, source },
      {
        jobId,
        attempts: this.config.jobAttempts,
        backoff: { type: 'exponential', delay: this.config.jobBackoffMs },
        // Completed ids are kept a week so a late duplicate is still recognised; the conditional creates
        // make even a later re-delivery harmless.
        removeOnComplete: { age: 7 * 24 * 3600 },
        removeOnFail: false,
      },
    );
    return { jobId };
  }
}
