import { Inject, Module, type OnModuleDestroy } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { ApplyService } from './apply.service';
import { PatientDataLoader } from './patient-data-loader';
import { PlanDefinitionApplyController } from './plan-definition-apply.controller';
import { PlanRegenerator } from './plan-regenerator';
import { PlanWriteLock } from './plan-write-lock';
import { PlanWriter } from './plan-writer';

const PLAN_LOCK_REDIS = Symbol('PLAN_LOCK_REDIS');
import { ProfilePublisher } from './profile-publisher';
import { ProtocolsController } from './protocols.controller';

@Module({
  controllers: [ProtocolsController, PlanDefinitionApplyController],
  providers: [
    ProfilePublisher,
    PatientDataLoader,
    ApplyService,
    PlanRegenerator,
    PlanWriter,
    {
      provide: PLAN_LOCK_REDIS,
      inject: [APP_CONFIG],
      // No offline queue: with Redis down a persisted $apply fails at once (503) instead of waiting.
      // Connection errors surface as failed commands (503) and in /health, not as unhandled 'error' events.
      useFactory: (config: AppConfig) =>
        new Redis(config.redisUrl, { enableOfflineQueue: false }).on('error', () => undefined),
    },
    {
      provide: PlanWriteLock,
      inject: [PLAN_LOCK_REDIS, APP_CONFIG],
      useFactory: (redis: Redis, config: AppConfig) => new PlanWriteLock(redis, config.queuePrefix),
    },
  ],
  exports: [ApplyService, PlanRegenerator],
})
export class ProtocolsModule implements OnModuleDestroy {
  constructor(@Inject(PLAN_LOCK_REDIS) private readonly redis: Redis) {}

  onModuleDestroy(): void {
    this.redis.disconnect();
  }
}
