import { Logger } from '@nestjs/common';
import { OnWorkerEvent, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { QueueJobMetrics } from './queue-job-metrics';

/** A @nestjs/bullmq WorkerHost that counts outcomes per queue and logs dead letters (ids only, no payload). */
export abstract class MeteredWorkerHost extends WorkerHost {
  protected readonly logger = new Logger(this.constructor.name);

  protected constructor(protected readonly queueMetrics: QueueJobMetrics) {
    super();
  }

  @OnWorkerEvent('completed')
  onCompleted(job: Job): void {
    this.queueMetrics.finished.inc({ queue: job.queueName, result: 'completed' });
    if (job.processedOn && job.finishedOn)
      this.queueMetrics.duration.observe({ queue: job.queueName }, (job.finishedOn - job.processedOn) / 1000);
  }

  @OnWorkerEvent('failed')
  onFailed(job: Job | undefined, error: Error): void {
    if (!job) return;
    // BullMQ emits 'failed' for every attempt; the last one is the dead letter.
    const final = job.attemptsMade >= (job.opts.attempts ?? 1);
    this.queueMetrics.finished.inc({ queue: job.queueName, result: final ? 'dead' : 'failed' });
    this.logger.warn({
      msg: final ? 'job dead-lettered' : 'job failed, will retry',
      queue: job.queueName,
      job: job.id,
      attempt: job.attemptsMade,
      error: error.message,
    });
  }

  @OnWorkerEvent('error')
  onWorkerError(error: Error): void {
    this.logger.error({ msg: 'worker error', error: error.message });
  }
}
