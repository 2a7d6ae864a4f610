import type { CapabilityStatement, CapabilityStatementRest } from '@medplum/fhirtypes';

export interface CapabilityStatementInput {
  /** Base URL of the server the statement describes. */
  baseUrl: string;
  software: CapabilityStatement['software'];
  description: string;
  format: string[];
  rest: CapabilityStatementRest[];
  /** Canonical CapabilityStatements this one conforms to (the Bulk Data IG's, say). */
  instantiates?: string[];
}

/**
 * A CapabilityStatement for a FHIR R4 server instance: the header every `/metadata` of ours shares (status, date,
 * kind, FHIR version), around what the caller says it offers.
 */
export function instanceCapabilityStatement(input: CapabilityStatementInput): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-11-22',
    kind: 'instance',
    ...(input.instantiates && { instantiates: input.instantiates }),
    fhirVersion: '4.0.1',
    format: input.format,
    software: input.software,
    implementation: { description: input.description, url: input.baseUrl },
    rest: input.rest,
  };
}
