import {
  Global,
  Inject,
  Logger,
  Module,
  Optional,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { redisOptions } from '@kc/queue';
import { FhirClient } from '@kc/fhir';
import { MissedIndexUpdates } from './missed-updates';
import { recordOnLists, ToDoIndex, WorklistIndex } from './worklist-index';

const WORKLIST_REDIS = Symbol('WORKLIST_REDIS');

/**
 * The worklist index, and the to-do list's kept the same way, in every process that writes to the FHIR server (API,
 * worker): each registers them as a listener of its FhirClient, so every write path ($apply persist, follow-ups,
 * decisions, overdue sweep, overrides) updates them. At start they are rebuilt from the FHIR server, then
 * reconciled every WORKLIST_RECONCILE_MS by one replica at a time (a Redis lock each).
 */
@Global()
@Module({
  providers: [
    {
      provide: WORKLIST_REDIS,
      inject: [APP_CONFIG],
      // Not connected, a command fails at once (ioredis's default queued it for 20 reconnect attempts: every worklist
      // read and every FHIR write's index update waited ~20 s): a worklist read answers 503, a write stands and its
      // index update is replayed when Redis is back (afterReconnect).
      useFactory: (config: AppConfig) =>
        new Redis({ ...redisOptions(config), enableOfflineQueue: false }).on('error', () => undefined),
    },
    {
      provide: WorklistIndex,
      inject: [WORKLIST_REDIS, FhirClient, APP_CONFIG],
      useFactory: (redis: Redis, fhir: FhirClient, config: AppConfig) =>
        new WorklistIndex(redis, fhir, config.queuePrefix),
    },
    {
      provide: ToDoIndex,
      inject: [WORKLIST_REDIS, FhirClient, APP_CONFIG],
      useFactory: (redis: Redis, fhir: FhirClient, config: AppConfig) => new ToDoIndex(redis, fhir, config.queuePrefix),
    },
  ],
  exports: [WorklistIndex, ToDoIndex],
})
export class WorklistIndexModule implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('WorklistIndex');
  private timer?: NodeJS.Timeout;
  /** Updates that failed while Redis was down, replayed when it is back. */
  private readonly missed = new MissedIndexUpdates((written, locations) => this.record(written, locations));
  private readonly lists: WorklistIndex[];

  constructor(
    index: WorklistIndex,
    toDo: ToDoIndex,
    private readonly fhir: FhirClient,
    @Inject(WORKLIST_REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Optional() registry?: Registry,
  ) {
    this.lists = [index, toDo];
    const missed = this.missed;
    // Read when scraped: how far the index lags behind the FHIR server's writes after a Redis outage.
    if (registry)
      new Gauge({
        name: 'kc_worklist_index_missed_updates',
        help: 'Resources whose worklist index update failed while Redis was down, waiting to be replayed',
        registers: [registry],
        collect() {
          this.set(missed.size);
        },
      });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.connected(5000);
    this.fhir.onWrite(async (written, locations) => {
      try {
        await this.record(written, locations);
      } catch (err) {
        // The FHIR write stands; the index gets it when Redis is back (or at the next reconciliation).
        const dropped = this.missed.keep(written, locations);
        this.logger.warn({
          msg: 'worklist index update failed',
          error: (err as Error).message,
          kept: this.missed.size,
          dropped,
        });
      }
    });
    await this.reconcile('start');
    this.redis.on('ready', () => void this.afterReconnect());
    if (this.config.worklistReconcileMs > 0) {
      this.timer = setInterval(() => void this.reconcile('periodic'), this.config.worklistReconcileMs);
      this.timer.unref();
    }
  }

  /**
   * Every list sees every write (a Task approved leaves the worklist and joins the to-do list), in one round trip;
   * replays are idempotent.
   */
  private async record(written: Parameters<WorklistIndex['record']>[0], locations: string[]): Promise<void> {
    await recordOnLists(this.redis, this.lists, written, locations);
  }

  /** Waits (up to `ms`) for the first connection: without an offline queue, a command sent before it fails. */
  private async connected(ms: number): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      this.redis.once('ready', done);
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /**
   * Redis is back: the updates missed meanwhile are applied, and an index that is gone (a Redis restarted without its
   * data, as without persistence; or down when this process started) is rebuilt now rather than at the next
   * reconciliation, so the worklist is not shown empty for minutes.
   */
  private async afterReconnect(): Promise<void> {
    if (this.missed.size) {
      const { replayed, left } = await this.missed.replay();
      this.logger.log({ msg: 'worklist index updates replayed after a Redis outage', replayed, left });
    }
    for (const list of this.lists) {
      try {
        if (await list.lastRebuild()) continue;
      } catch {
        return; // down again: the next 'ready' looks again
      }
      await this.reconcileList(list, 'index missing after a Redis outage');
    }
  }

  private async reconcile(why: string): Promise<void> {
    for (const list of this.lists) await this.reconcileList(list, why);
  }

  private async reconcileList(list: WorklistIndex, why: string): Promise<void> {
    const name = list instanceof ToDoIndex ? 'to-do list' : 'worklist';
    try {
      // At start every replica waits for a rebuild (its own, or the one another replica is running).
      const ran = await list.exclusively('rebuild', 10 * 60_000, async () => {
        const result = await list.rebuild();
        this.logger.log({ msg: `${name} index rebuilt`, why, ...result });
      });
      if (!ran && why === 'start') await this.waitForRebuild(list);
    } catch (err) {
      this.logger.warn({ msg: `${name} index rebuild failed`, why, error: (err as Error).message });
    }
  }

  private async waitForRebuild(list: WorklistIndex): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !(await list.lastRebuild())) await new Promise((r) => setTimeout(r, 200));
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    this.redis.disconnect();
  }
}
