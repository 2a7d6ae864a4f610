import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { JOBS, QUEUES } from '@kc/queue';
import { ProcedurePoller } from './procedure-poller';

/**
 * BullMQ job schedulers for the housekeeping jobs. Schedulers live in Redis, keyed by name: every worker process
 * upserts the same ones, and each run is one job taken by one worker, however many processes are running.
 */
@Injectable()
export class MaintenanceSchedules implements OnApplicationBootstrap {
  constructor(
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly poller: ProcedurePoller,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const keep = { removeOnComplete: 100, removeOnFail: 100 };
    // The cursor starts now (or POLL_SINCE) the first time: polling must not turn years of old infusions into Tasks.
    await this.poller.initCursor();
    if (this.config.pollIntervalMs > 0) {
      await this.queue.upsertJobScheduler(
        JOBS.pollProcedures,
        { every: this.config.pollIntervalMs },
        { name: JOBS.pollProcedures, opts: keep },
      );
    } else {
      await this.queue.removeJobScheduler(JOBS.pollProcedures);
    }
    await this.queue.upsertJobScheduler(
      JOBS.overdueSweep,
      { pattern: this.config.overdueSweepEvery },
      { name: JOBS.overdueSweep, opts: keep },
    );
  }
}
