import { Global, Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { Registry } from 'prom-client';
import { FhirClient } from './fhir-client';
import { meteredFetch } from './fhir-metrics';

/** Provides the FhirClient for the configured server (the sandbox's URL is filled in before Nest starts). */
@Global()
@Module({
  providers: [
    {
      provide: FhirClient,
      inject: [APP_CONFIG, { token: Registry, optional: true }],
      useFactory: (config: AppConfig, registry?: Registry) => {
        if (!config.fhirBaseUrl) throw new Error('fhirBaseUrl must be resolved before the FHIR module starts');
        const fetchImpl = registry ? meteredFetch(registry, config.fhirBaseUrl) : undefined;
        return new FhirClient({
          baseUrl: config.fhirBaseUrl,
          auth: config.fhirAuth,
          fetchImpl,
          timeoutMs: config.fhirTimeoutMs,
        });
      },
    },
  ],
  exports: [FhirClient],
})
export class FhirModule {}
