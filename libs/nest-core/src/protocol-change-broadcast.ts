import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { redisOptions } from '@kc/queue';
import { PlanDefinitions } from './plan-definitions';

/**
 * A protocol changed or deleted on the FHIR server is told to every process of the deployment (Redis pub/sub), so
 * each reads the protocols it kept again: a notification reaches one replica, and the others would judge approvals
 * with what they read up to 30 s before. Redis down: each process still reads them again within those 30 s.
 */
@Injectable()
export class ProtocolChangeBroadcast implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(ProtocolChangeBroadcast.name);
  private readonly channel: string;
  private publisher?: Redis;
  private subscriber?: Redis;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly protocols: PlanDefinitions,
  ) {
    this.channel = `${config.queuePrefix}:protocols-changed`;
  }

  onModuleInit(): void {
    // Not awaited: a Redis down at start must not hold the process back (the subscription is made once connected).
    this.subscriber = new Redis(redisOptions(this.config)).on('error', () => undefined);
    this.subscriber.on('message', (channel: string) => {
      if (channel === this.channel) this.protocols.forgetServerPlans();
    });
    this.subscriber.subscribe(this.channel).catch(() => undefined);
    this.publisher = new Redis({ ...redisOptions(this.config), enableOfflineQueue: false }).on(
      'error',
      () => undefined,
    );
  }

  /** Forgets here at once, and tells the other processes (best effort: they forget within 30 s anyway). */
  async changed(): Promise<void> {
    this.protocols.forgetServerPlans();
    try {
      await this.publisher?.publish(this.channel, 'changed');
    } catch (err) {
      this.logger.warn({ msg: 'protocol change not told to the other processes', error: (err as Error).message });
    }
  }

  onModuleDestroy(): void {
    this.subscriber?.disconnect();
    this.publisher?.disconnect();
  }
}
