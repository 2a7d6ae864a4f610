import { DynamicModule, Module } from '@nestjs/common';
import { MetricsModule } from '@kc/common';
import { ConfigModule, type AppConfig } from '@kc/config';
import { FhirModule } from '@kc/fhir';
import { ProtocolCatalogModule } from '@kc/protocols';
import { QueueModule } from '@kc/queue';
import { WorkerModule } from './worker.module';

/** The worker on its own (apps/worker/src/main.ts): no HTTP API. */
@Module({})
export class WorkerAppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: WorkerAppModule,
      imports: [
        ConfigModule.forRoot(config),
        FhirModule,
        QueueModule.forRoot(config),
        ProtocolCatalogModule,
        MetricsModule,
        WorkerModule.forRoot(config),
      ],
    };
  }
}
