import { Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Worker, type Job } from 'bullmq';
import type { AppConfig } from '@kc/config';
import { redisConnection } from './redis-connection';

export interface JobHandler<T = unknown, R = unknown> {
  process(job: Job<T>): Promise<R>;
  /** Called after every failed attempt; `final` when no retry is left (the job is dead-lettered). */
  onFailed?(job: Job<T>, error: Error, final: boolean): void;
}

/**
 * A BullMQ worker whose lock and stall settings come from config (decorator options cannot), started when the
 * app is ready and closed gracefully on shutdown: close() lets the active job finish, and a job whose worker
 * died is taken over by another worker once its lock expires.
 */
export abstract class ManagedWorker<T = unknown, R = unknown> implements OnApplicationBootstrap, OnApplicationShutdown {
  protected readonly logger = new Logger(this.constructor.name);
  private worker?: Worker<T, R>;

  protected constructor(
    private readonly queueName: string,
    private readonly config: AppConfig,
    private readonly handler: JobHandler<T, R>,
    private readonly concurrency = 4,
  ) {}

  onApplicationBootstrap(): void {
    this.worker = new Worker<T, R>(this.queueName, (job) => this.handler.process(job), {
      connection: redisConnection(this.config.redisUrl),
      prefix: this.config.queuePrefix,
      concurrency: this.concurrency,
      lockDuration: this.config.jobLockMs,
      stalledInterval: this.config.jobLockMs,
      maxStalledCount: 3,
    });
    this.worker.on('failed', (job, error) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1);
      this.handler.onFailed?.(job, error, final);
    });
    this.worker.on('error', (error) => this.logger.error({ msg: 'worker error', error: error.message }));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }
}
