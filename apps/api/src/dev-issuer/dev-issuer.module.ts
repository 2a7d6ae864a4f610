import { Module } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { API_REDIS } from '../api-redis.module';
import { DevIssuerController, SmartConfigurationController } from './dev-issuer.controller';
import { DevIssuerService } from './dev-issuer.service';
import { DevIssuerStore } from './dev-issuer-store';
import { DevIssuerTokenStatus } from './token-status';

/** The built-in development OpenID issuer (DEV_ISSUER); its endpoints answer 404 when it is off. */
@Module({
  controllers: [SmartConfigurationController, DevIssuerController],
  providers: [
    DevIssuerService,
    DevIssuerTokenStatus,
    {
      provide: DevIssuerStore,
      inject: [API_REDIS, APP_CONFIG],
      useFactory: (redis: Redis, config: AppConfig) => new DevIssuerStore(redis, config.queuePrefix),
    },
  ],
})
export class DevIssuerModule {}
