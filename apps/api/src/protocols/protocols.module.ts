import { Module } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { API_REDIS } from '../api-redis.module';
import { ApplyService } from './apply.service';
import { InlinePlanDefinitions } from './inline-plan-definitions';
import { PlanDefinitionApplyController } from './plan-definition-apply.controller';
import { PlanRegenerator } from './plan-regenerator';
import { PlanWriteLock } from './plan-write-lock';
import { PlanWriter } from './plan-writer';
import { PatientRecordGuard } from './patient-record-guard';
import { ProfilePublisher } from './profile-publisher';
import { ProtocolsController } from './protocols.controller';

@Module({
  controllers: [ProtocolsController, PlanDefinitionApplyController],
  providers: [
    ProfilePublisher,
    ApplyService,
    PlanRegenerator,
    PlanWriter,
    InlinePlanDefinitions,
    PatientRecordGuard,
    {
      provide: PlanWriteLock,
      inject: [API_REDIS, APP_CONFIG],
      useFactory: (redis: Redis, config: AppConfig) => new PlanWriteLock(redis, config.queuePrefix),
    },
  ],
  exports: [ApplyService, PlanRegenerator, PatientRecordGuard],
})
export class ProtocolsModule {}
