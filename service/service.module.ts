import { DynamicModule, Module } from '@nestjs/common';
import type { AppConfig } from '@kc/config';
import { CoreModule } from '@kc/nest-core';
import { ApiModule, FHIR_STORE_BACKUPS, type FhirStoreBackupsPort } from '../apps/api/src';
import { WorkerModule } from '../apps/worker/src';

/**
 * The root Nest modules of the service's two kinds of process. Only this composition root knows both apps:
 * apps/api and apps/worker import libs only.
 */
@Module({})
export class ServiceModule {
  /**
   * The HTTP API, plus the workers in the same process when config.runWorker is true (the quick-start default).
   * `storeBackups`: the embedded FHIR store's, when this process holds one.
   */
  static api(config: AppConfig, adapters: { storeBackups?: FhirStoreBackupsPort } = {}): DynamicModule {
    return {
      module: ServiceModule,
      global: true,
      imports: [CoreModule.forRoot(config), ApiModule, ...(config.runWorker ? [WorkerModule.forRoot(config)] : [])],
      providers: [{ provide: FHIR_STORE_BACKUPS, useValue: adapters.storeBackups ?? null }],
      exports: [FHIR_STORE_BACKUPS],
    };
  }

  /** The workers alone (npm run start:worker): no HTTP API. */
  static worker(config: AppConfig): DynamicModule {
    return { module: ServiceModule, imports: [CoreModule.forRoot(config), WorkerModule.forRoot(config)] };
  }
}
