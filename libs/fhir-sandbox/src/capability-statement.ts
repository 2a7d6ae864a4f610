import type { CapabilityStatement } from '@medplum/fhirtypes';
import { instanceCapabilityStatement } from '@kc/common';

/** What the sandbox offers: enough for clients that probe /metadata before talking. */
export function capabilityStatement(baseUrl: string): CapabilityStatement {
  return instanceCapabilityStatement({
    baseUrl,
    format: ['application/fhir+json'],
    software: { name: 'ketamine-careplans FHIR sandbox (Medplum fhir-router, SQLite store)' },
    description: 'Embedded FHIR R4 server (durable SQLite store or in memory) for quick start and tests',
    rest: [{ mode: 'server', interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }] }],
  });
}
