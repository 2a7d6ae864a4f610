import { Global, Inject, Module, type OnModuleDestroy } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { redisOptions } from '@kc/queue';

/** The API's own Redis client for request-time state shared by every replica (CDS token replay, plan write locks). */
export const API_REDIS = Symbol('API_REDIS');

/**
 * One connection for the API's request-time Redis state. No offline queue: with Redis down a request fails at once
 * (503) instead of waiting for a reconnect; connection errors surface as failed commands and in /health, not as
 * unhandled 'error' events.
 */
@Global()
@Module({
  providers: [
    {
      provide: API_REDIS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) =>
        new Redis({ ...redisOptions(config), enableOfflineQueue: false }).on('error', () => undefined),
    },
  ],
  exports: [API_REDIS],
})
export class ApiRedisModule implements OnModuleDestroy {
  constructor(@Inject(API_REDIS) private readonly redis: Redis) {}

  onModuleDestroy(): void {
    this.redis.disconnect();
  }
}
