import { Module } from '@nestjs/common';
import { BulkExportsController } from './bulk-exports.controller';
import { DeadLettersController } from './dead-letters.controller';
import { FhirStoreBackupsController } from './fhir-store-backups.controller';
import { MetricsController } from './metrics.controller';
import { QueueMetrics } from './queue-metrics';

@Module({
  controllers: [DeadLettersController, BulkExportsController, FhirStoreBackupsController, MetricsController],
  providers: [QueueMetrics],
})
export class OperationsModule {}
