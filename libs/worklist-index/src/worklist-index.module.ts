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
import { WorklistIndex } from './worklist-index';

const WORKLIST_REDIS = Symbol('WORKLIST_REDIS');

/**
 * The worklist index in every process that writes to the FHIR server (API, worker): each registers it as a
 * listener of its FhirClient, so every write path ($apply persist, follow-ups, decisions, overdue sweep,
 * overrides) updates it. At start it is rebuilt from the FHIR server, then reconciled every
 * WORKLIST_RECONCILE_MS by one replica at a time (a Redis lock).
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
  ],
  exports: [WorklistIndex],
})
export class WorklistIndexModule implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('WorklistIndex');
  private timer?: NodeJS.Timeout;
  /** Updates that failed while Redis was down, replayed when it is back. */
  private readonly missed = new MissedIndexUpdates((written, locations) => this.index.record(written, locations));

  constructor(
    private readonly index: WorklistIndex,
    private readonly fhir: FhirClient,
    @Inject(WORKLIST_REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Optional() registry?: Registry,
  ) {
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
        await this.index.record(written, locations);
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
    try {
      if (await this.index.lastRebuild()) return;
    } catch {
      return; // down again: the next 'ready' looks again
    }
    await this.reconcile('index missing after a Redis outage');
  }

  private async reconcile(why: string): Promise<void> {
    try {
      // At start every replica waits for a rebuild (its own, or the one another replica is running).
      const ran = await this.index.exclusively('rebuild', 10 * 60_000, async () => {
        const result = await this.index.rebuild();
        this.logger.log({ msg: 'worklist index rebuilt', why, ...result });
      });
      if (!ran && why === 'start') await this.waitForRebuild();
    } catch (err) {
      this.logger.warn({ msg: 'worklist index rebuild failed', why, error: (err as Error).message });
    }
  }

  private async waitForRebuild(): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !(await this.index.lastRebuild())) await new Promise((r) => setTimeout(r, 200));
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    this.redis.disconnect();
  }
}
