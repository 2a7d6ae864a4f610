import { DynamicModule, Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bullmq';
import type { AppConfig } from '@kc/config';
import { QUEUES } from './queue-names';
import { redisConnection } from './redis-connection';
import { InfusionEventsProducer } from './infusion-events.producer';
import { QueueErrorLogger } from './queue-error-logger';
import { ReminderQueue } from './reminder-queue';
import { PatientRecordEventsProducer } from './patient-record-events.producer';
import { CompletedTaskEventsProducer } from './completed-task-events.producer';
import { StoppedPlanEventsProducer } from './stopped-plan-events.producer';
import { ScoreEventsProducer } from './score-events.producer';
import { DeadLetters } from './dead-letters';
import { BulkExports } from './bulk-exports';

/** Connects BullMQ to the configured Redis and registers every queue for producers and processors alike. */
@Module({})
export class QueueModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: QueueModule,
      global: true,
      imports: [
        BullModule.forRoot({ prefix: config.queuePrefix, connection: redisConnection(config) }),
        ...Object.values(QUEUES).map((name) => BullModule.registerQueue({ name })),
      ],
      providers: [
        InfusionEventsProducer,
        ScoreEventsProducer,
        StoppedPlanEventsProducer,
        PatientRecordEventsProducer,
        CompletedTaskEventsProducer,
        ReminderQueue,
        DeadLetters,
        BulkExports,
        QueueErrorLogger,
      ],
      exports: [
        BullModule,
        InfusionEventsProducer,
        ScoreEventsProducer,
        StoppedPlanEventsProducer,
        PatientRecordEventsProducer,
        CompletedTaskEventsProducer,
        ReminderQueue,
        DeadLetters,
        BulkExports,
      ],
    };
  }
}
