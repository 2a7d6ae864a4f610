import { DynamicModule, Module } from '@nestjs/common';
import { LoggingModule, MetricsModule } from '@kc/common';
import { ConfigModule, type AppConfig } from '@kc/config';
import { FhirModule } from '@kc/fhir';
import { QueueModule } from '@kc/queue';
import { WorklistIndexModule } from '@kc/worklist-index';
import { ProtocolCatalogModule } from './protocol-catalog.module';

/**
 * The Nest wiring every process of the service needs, whatever it runs (HTTP API, workers or both): the config,
 * the pino logger (nestjs-pino), the FHIR gateway, the BullMQ queues, the validated protocol catalog and the metrics registry. All global, so
 * the feature modules of apps/api and apps/worker inject them without importing anything.
 */
@Module({})
export class CoreModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: CoreModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule.forRoot(config.logLevel),
        FhirModule,
        QueueModule.forRoot(config),
        ProtocolCatalogModule,
        MetricsModule,
        WorklistIndexModule,
      ],
    };
  }
}
