import { Global, Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from './fhir-client';

/** Provides the FhirClient for the configured server (the sandbox's URL is filled in before Nest starts). */
@Global()
@Module({
  providers: [
    {
      provide: FhirClient,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => {
        if (!config.fhirBaseUrl) throw new Error('fhirBaseUrl must be resolved before the FHIR module starts');
        return new FhirClient({ baseUrl: config.fhirBaseUrl, auth: config.fhirAuth });
      },
    },
  ],
  exports: [FhirClient],
})
export class FhirModule {}
