import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Job, Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { JOBS, ManagedWorker, QUEUES, type JobHandler } from '@kc/queue';
import { OverdueSweep } from './overdue-sweep';
import { ProcedurePoller } from './procedure-poller';

/** Housekeeping jobs, scheduled by BullMQ job schedulers so several worker processes still run each once. */
@Injectable()
export class MaintenanceProcessor implements JobHandler {
  constructor(
    private readonly poller: ProcedurePoller,
    private readonly sweep: OverdueSweep,
  ) {}

  async process(job: Job): Promise<unknown> {
    switch (job.name) {
      case JOBS.pollProcedures:
        return this.poller.poll();
      case JOBS.overdueSweep:
        return this.sweep.sweep();
      default:
        throw new Error(`unknown maintenance job ${job.name}`);
    }
  }
}

@Injectable()
export class MaintenanceWorker extends ManagedWorker {
  constructor(
    @Inject(APP_CONFIG) private readonly appConfig: AppConfig,
    processor: MaintenanceProcessor,
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
  ) {
    super(QUEUES.maintenance, appConfig, processor, 1);
  }

  override async onApplicationBootstrap(): Promise<void> {
    super.onApplicationBootstrap();
    if (this.appConfig.pollIntervalMs > 0) {
      await this.queue.upsertJobScheduler(JOBS.pollProcedures, { every: this.appConfig.pollIntervalMs }, { name: JOBS.pollProcedures, opts: { removeOnComplete: 100, removeOnFail: 100 } });
    } else {
      await this.queue.removeJobScheduler(JOBS.pollProcedures);
    }
    await this.queue.upsertJobScheduler(JOBS.overdueSweep, { pattern: this.appConfig.overdueSweepEvery }, { name: JOBS.overdueSweep, opts: { removeOnComplete: 100, removeOnFail: 100 } });
  }
}
