import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { redisOptions } from '@kc/queue';

/** Longer than an email's send and its record take (nodemailer gives up on a silent server within 2 min). */
const HOLD_MS = 5 * 60_000;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * One sender at a time per alert, across the worker's jobs and replicas: the sweep and an alert job (or two jobs)
 * looking at the same issue at the same moment both found it not told yet and both emailed it. The one that claims it
 * sends it; the other leaves it (told by then, or, if that send failed, found again by the next look). With Redis
 * unreachable every sender sends: at least once, as before.
 */
@Injectable()
export class AlertSendClaims implements OnModuleDestroy {
  private readonly redis: Redis;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.redis = new Redis({ ...redisOptions(config), enableOfflineQueue: false }).on('error', () => undefined);
  }

  /** The release of the claim on `key`, or undefined when another sender holds it. */
  async claim(key: string): Promise<(() => Promise<void>) | undefined> {
    const name = `${this.config.queuePrefix}:clinic-alert-sending:${key}`;
    const token = randomUUID();
    let answer: string | null;
    try {
      answer = await this.redis.set(name, token, 'PX', HOLD_MS, 'NX');
    } catch {
      return () => Promise.resolve();
    }
    if (answer !== 'OK') return undefined;
    return async () => {
      await this.redis.eval(RELEASE, 1, name, token).catch(() => undefined);
    };
  }

  onModuleDestroy(): void {
    this.redis.disconnect();
  }
}
