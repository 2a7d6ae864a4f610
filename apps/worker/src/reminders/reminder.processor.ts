import { Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import type { DeliverReminderJob } from '@kc/queue';
import { MeteredWorkerHost } from '../metered-worker-host';
import { QueueJobMetrics } from '../queue-job-metrics';
import { ReminderDelivery, type ReminderOutcome } from './reminder-delivery.service';

/** Queue mechanics only: a delayed reminder job fired; ReminderDelivery decides and delivers. */
@Injectable()
export class ReminderProcessor extends MeteredWorkerHost {
  constructor(
    private readonly delivery: ReminderDelivery,
    queueMetrics: QueueJobMetrics,
  ) {
    super(queueMetrics);
  }

  process(job: Job<DeliverReminderJob>): Promise<ReminderOutcome> {
    return this.delivery.deliver(job.data.communicationRequestId, job.data.sendAt);
  }
}
