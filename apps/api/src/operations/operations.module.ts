import { Module } from '@nestjs/common';
import { DeadLettersController } from './dead-letters.controller';
import { MetricsController } from './metrics.controller';
import { QueueMetrics } from './queue-metrics';

@Module({ controllers: [DeadLettersController, MetricsController], providers: [QueueMetrics] })
export class OperationsModule {}
