import { Global, Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { ProtocolCatalog } from '@kc/protocols';

/** Loads and validates fhir-profiles/ once per process; a broken profile stops startup with the list of problems. */
@Global()
@Module({
  providers: [
    {
      provide: ProtocolCatalog,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ProtocolCatalog.fromDirectory(config.profilesDir),
    },
  ],
  exports: [ProtocolCatalog],
})
export class ProtocolCatalogModule {}
