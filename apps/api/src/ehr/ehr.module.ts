import { Module } from '@nestjs/common';
import { FhirReadController } from './fhir-read.controller';
import { ExportKickOffController } from './bulk-export/export-kick-off.controller';
import { ExportStatusController } from './bulk-export/export-status.controller';
import { ExportFilesController } from './bulk-export/export-files.controller';
import { ExportRequestMetrics } from './bulk-export/export-request.metrics';
import { EhrSubscriptionsController } from './subscriptions/ehr-subscriptions.controller';

// The bulk export's and Subscription routes first: the read API's `:type` and `:type/:id` would take them.
@Module({
  controllers: [
    ExportKickOffController,
    ExportStatusController,
    ExportFilesController,
    EhrSubscriptionsController,
    FhirReadController,
  ],
  providers: [ExportRequestMetrics],
})
export class EhrModule {}
