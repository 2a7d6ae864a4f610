import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { JOBS, QUEUES } from '@kc/queue';
import { CHANGE_POLLS, PollCursors, type ChangePoll } from './change-polls';

/**
 * BullMQ job schedulers for the housekeeping jobs. Schedulers live in Redis, keyed by name: every worker process
 * upserts the same ones, and each run is one job taken by one worker, however many processes are running. Redis
 * restarted without its data loses them (and the poll cursor), so they are upserted again whenever the connection
 * becomes ready, not only at start.
 */
@Injectable()
export class MaintenanceSchedules implements OnApplicationBootstrap {
  private readonly logger = new Logger(MaintenanceSchedules.name);

  constructor(
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(CHANGE_POLLS) private readonly polls: ChangePoll[],
    private readonly pollCursors: PollCursors,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.ensure();
    const client = await this.queue.client;
    // ioredis says `ready` after every reconnect; the first one has already happened.
    client.on('ready', () => {
      this.ensure().catch((err: Error) =>
        this.logger.warn({ msg: 'could not re-create the schedulers', error: err.message }),
      );
    });
  }

  /** Idempotent: the same schedulers, whoever runs it and however often. */
  async ensure(): Promise<void> {
    const keep = { removeOnComplete: 100, removeOnFail: 100 };
    for (const poll of this.polls) await this.pollCursors.start(poll);
    await this.every(JOBS.pollProcedures, this.config.pollIntervalMs, keep);
    await this.every(JOBS.reconcileProcedures, this.config.reconcileEveryMs, keep);
    await this.every(JOBS.sweepReminders, this.config.reminderSweepMs, keep);
    await this.every(JOBS.reviveDeadLetters, this.config.deadLetterRevivalMs, keep);
    await this.queue.upsertJobScheduler(
      JOBS.overdueSweep,
      { pattern: this.config.overdueSweepEvery },
      { name: JOBS.overdueSweep, opts: keep },
    );
  }

  private async every(name: string, ms: number, opts: { removeOnComplete: number; removeOnFail: number }) {
    if (ms > 0) await this.queue.upsertJobScheduler(name, { every: ms }, { name, opts });
    else await this.queue.removeJobScheduler(name);
  }
}
