import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { withinEnqueueTimeout } from './infusion-events.producer';
import { JOBS, retryOptions, withdrawStoppedPlanJobId, type WithdrawStoppedPlanJob } from './jobs';
import { addKeyed } from './keyed-jobs';
import { QUEUES } from './queue-names';

/**
 * Puts a changed CarePlan on the maintenance queue, so a plan an EHR stopped has its Tasks awaiting approval
 * withdrawn now rather than at the next sweep. The job reads the plan itself: a notification only says which one.
 */
@Injectable()
export class StoppedPlanEventsProducer {
  constructor(
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue<WithdrawStoppedPlanJob>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async enqueue(carePlanId: string): Promise<{ jobId: string }> {
    const jobId = withdrawStoppedPlanJobId(carePlanId);
    const queued = await withinEnqueueTimeout(
      addKeyed(
        this.queue,
        JOBS.withdrawStoppedPlan,
        { carePlanId },
        { jobId, ...retryOptions(this.config), removeOnComplete: true, removeOnFail: false },
      ),
    );
    return { jobId: queued };
  }
}
