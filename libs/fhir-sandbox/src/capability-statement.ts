import type { CapabilityStatement } from '@medplum/fhirtypes';

/** What the sandbox offers: enough for clients that probe /metadata before talking. */
export function capabilityStatement(baseUrl: string): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-11-22',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['application/fhir+json'],
    software: { name: 'ketamine-careplans FHIR sandbox (Medplum fhir-router, SQLite store)' },
    implementation: {
      description: 'Embedded FHIR R4 server (durable SQLite store or in memory) for quick start and tests',
      url: baseUrl,
    },
    rest: [{ mode: 'server', interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }] }],
  };
}
