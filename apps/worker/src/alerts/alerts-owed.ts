import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { QUEUES, queueRedis } from '@kc/queue';

/** An alert the clinic is owed: what it is about (`Procedure/<id>`), its plan (`CarePlan/<id>`) if any, since when. */
export interface AlertOwed {
  about: string;
  carePlan?: string;
  since: string;
}

/**
 * Alerts that only a job finds, kept until the clinic is told (one Redis hash per kind, `<prefix>:alerts-owed:<kind>`,
 * field the reference the alert is about): a job's retries spent while a mail server was down left such an alert
 * untold for good, as nothing else looks for it (an infusion charted under a plan recorded in error; since session
 * 54). The sweep looks again at what is owed. References only, no patient data. A Redis that loses its data loses
 * what is owed with the jobs themselves.
 */
@Injectable()
export class AlertsOwed {
  constructor(
    // Its client, as the sweep's cursors use it: no connection of its own.
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Owed from now on (kept as first owed when owed already). */
  async owe(kind: string, alerts: Omit<AlertOwed, 'since'>[], now: Date): Promise<void> {
    if (!alerts.length) return;
    const redis = await queueRedis(this.queue);
    await Promise.all(
      alerts.map((alert) =>
        redis.hsetnx(
          this.key(kind),
          alert.about,
          JSON.stringify({ carePlan: alert.carePlan, since: now.toISOString() }),
        ),
      ),
    );
  }

  /** Told (or no longer owed): off the list. */
  async settle(kind: string, about: string[]): Promise<void> {
    if (about.length) await (await queueRedis(this.queue)).hdel(this.key(kind), ...about);
  }

  /** Every alert of this kind owed. */
  async all(kind: string): Promise<AlertOwed[]> {
    const stored = await (await queueRedis(this.queue)).hgetall(this.key(kind));
    return Object.entries(stored).flatMap(([about, value]) => {
      const parsed = JSON.parse(value) as Partial<AlertOwed>;
      return parsed.since ? [{ about, carePlan: parsed.carePlan, since: parsed.since }] : [];
    });
  }

  private key(kind: string): string {
    return `${this.config.queuePrefix}:alerts-owed:${kind}`;
  }
}
