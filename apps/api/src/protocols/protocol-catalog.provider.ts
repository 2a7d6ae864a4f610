import type { Provider } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { ProtocolCatalog } from '@kc/protocols';

/** Loads and validates fhir-profiles/ once at startup; a broken profile stops the service with the list of problems. */
export const protocolCatalogProvider: Provider = {
  provide: ProtocolCatalog,
  inject: [APP_CONFIG],
  useFactory: (config: AppConfig) => ProtocolCatalog.fromDirectory(config.profilesDir),
};
