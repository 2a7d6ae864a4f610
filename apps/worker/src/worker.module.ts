import { Module } from '@nestjs/common';
import { FollowUpMetrics } from './followups/follow-up.metrics';
import { FollowUpProcessor, FollowUpWorker } from './followups/follow-up.processor';
import { FollowUpService } from './followups/follow-up.service';
import { MaintenanceProcessor, MaintenanceWorker } from './maintenance/maintenance.processor';
import { OverdueSweep } from './maintenance/overdue-sweep';
import { ProcedurePoller } from './maintenance/procedure-poller';

/**
 * The background workers: follow-up generation, polling fallback, overdue sweep. Needs ConfigModule,
 * FhirModule, QueueModule, ProtocolCatalogModule and MetricsModule from the importing app.
 */
@Module({
  providers: [FollowUpMetrics, FollowUpService, FollowUpProcessor, FollowUpWorker, ProcedurePoller, OverdueSweep, MaintenanceProcessor, MaintenanceWorker],
  exports: [FollowUpService, ProcedurePoller, OverdueSweep],
})
export class WorkerModule {}
