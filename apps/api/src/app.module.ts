import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AuthModule } from '@kc/auth';
import { MetricsModule, OperationOutcomeFilter } from '@kc/common';
import { ConfigModule, type AppConfig } from '@kc/config';
import { FhirModule } from '@kc/fhir';
import { QueueModule } from '@kc/queue';
import { ProtocolCatalogModule } from '@kc/protocols';
import { HealthModule } from './health/health.module';
import { ProtocolsModule } from './protocols/protocols.module';
import { EventsModule } from './events/events.module';
import { ReviewModule } from './review/review.module';
import { EhrModule } from './ehr/ehr.module';
import { OperationsModule } from './operations/operations.module';
import { CdsHooksModule } from './cds-hooks/cds-hooks.module';
import { WorkerModule } from '../../worker/src/worker.module';

/**
 * The HTTP API. Feature modules are listed here; the worker's processors join the same process when
 * config.runWorker is true (the quick-start default) and run on their own via apps/worker otherwise.
 */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        FhirModule,
        QueueModule.forRoot(config),
        ProtocolCatalogModule,
        MetricsModule,
        AuthModule,
        HealthModule,
        ProtocolsModule,
        EventsModule,
        ReviewModule,
        EhrModule,
        OperationsModule,
        CdsHooksModule,
        ...(config.runWorker ? [WorkerModule.forRoot(config)] : []),
      ],
      providers: [{ provide: APP_FILTER, useClass: OperationOutcomeFilter }],
    };
  }
}
