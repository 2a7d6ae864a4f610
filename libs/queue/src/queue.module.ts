import { DynamicModule, Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bullmq';
import type { AppConfig } from '@kc/config';
import { QUEUES } from './queue-names';

/** Connects BullMQ to the configured Redis and registers every queue for producers and processors alike. */
@Module({})
export class QueueModule {
  static forRoot(config: AppConfig): DynamicModule {
    const redis = new URL(config.redisUrl);
    return {
      module: QueueModule,
      global: true,
      imports: [
        BullModule.forRoot({
          prefix: config.queuePrefix,
          connection: {
            host: redis.hostname,
            port: Number(redis.port || 6379),
            username: redis.username || undefined,
            password: redis.password ? decodeURIComponent(redis.password) : undefined,
            db: redis.pathname.length > 1 ? Number(redis.pathname.slice(1)) : 0,
            // BullMQ workers need this; producers tolerate it.
            maxRetriesPerRequest: null,
          },
        }),
        ...Object.values(QUEUES).map((name) => BullModule.registerQueue({ name })),
      ],
      exports: [BullModule],
    };
  }
}
