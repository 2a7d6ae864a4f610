import { Global, Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { Registry } from 'prom-client';
import { FhirClient } from './fhir-client';
import { meteredFetch } from './fhir-metrics';
import { SharedFhirRequests } from './shared-requests';

/**
 * Provides the FhirClient for the configured server (the sandbox's URL is filled in before Nest starts), and the
 * coalescers of the services that share their requests (SharedFhirRequests).
 */
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
    {
      provide: SharedFhirRequests,
      inject: [FhirClient, { token: Registry, optional: true }],
      useFactory: (fhir: FhirClient, registry?: Registry) => new SharedFhirRequests(fhir, registry),
    },
  ],
  exports: [FhirClient, SharedFhirRequests],
})
export class FhirModule {}
