import type { CapabilityStatement } from '@medplum/fhirtypes';
import { instanceCapabilityStatement } from '@kc/common';
import { READABLE_TYPES } from './read-search-params';

/**
 * Exactly what this service's own FHIR-shaped API offers (the FHIR server behind it may offer more). `profiles`: by
 * resource type, the profiles in fhir-profiles/ of what the service writes (docs/guide/profiles.md).
 */
export function apiCapabilityStatement(
  baseUrl: string,
  planDefinitions: string[],
  profiles: Record<string, string[]> = {},
): CapabilityStatement {
  return instanceCapabilityStatement({
    baseUrl,
    format: ['application/fhir+json', 'application/json'],
    software: { name: 'ketamine-careplans', version: '0.1.0' },
    description: 'Ketamine infusion care plans: read API for EHRs, Bulk Data export, PlanDefinition/$apply',
    instantiates: [`${BULK_DATA}/CapabilityStatement/bulk-data`],
    rest: [
      {
        mode: 'server',
        security: {
          cors: false,
          description:
            'Bearer JWT; roles integration or clinician for reads, clinician or integration for $apply; a token carrying ' +
            'SMART scopes (patient/, user/, system/; v1 or v2) is held to them, patient/ to its launch patient',
          service: [
            { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'OAuth' }] },
            {
              coding: [
                { system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' },
              ],
            },
          ],
        },
        // Bulk Data export (docs/guide/bulk-export.md): system level, and every patient's data (Patient/$export).
        operation: [{ name: 'export', definition: `${BULK_DATA}/OperationDefinition/export` }],
        resource: [
          ...readableResources(planDefinitions, profiles),
          {
            type: 'Patient',
            operation: [{ name: 'export', definition: `${BULK_DATA}/OperationDefinition/patient-export` }],
          },
          {
            type: 'Group',
            operation: [{ name: 'export', definition: `${BULK_DATA}/OperationDefinition/group-export` }],
          },
          // EHR integrations' rest-hook Subscriptions (docs/guide/ehr-subscriptions.md), delivered by the FHIR server.
          {
            type: 'Subscription',
            interaction: [{ code: 'create' }, { code: 'read' }, { code: 'search-type' }, { code: 'delete' }],
          },
        ],
      },
    ],
  });
}

const BULK_DATA = 'http://hl7.org/fhir/uv/bulkdata';

function readableResources(planDefinitions: string[], profiles: Record<string, string[]>) {
  return Object.entries(READABLE_TYPES).map(([type, params]) => ({
    type: type as 'Task',
    interaction: [{ code: 'read' as const }, { code: 'search-type' as const }],
    searchParam: params.map((name) => ({ name, type: searchParamType(name) })),
    ...(profiles[type]?.length ? { supportedProfile: profiles[type] } : {}),
    ...(type === 'PlanDefinition'
      ? {
          supportedProfile: planDefinitions,
          operation: [{ name: 'apply', definition: 'http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply' }],
        }
      : {}),
  }));
}

const REFERENCES = new Set(['patient', 'subject', 'based-on', 'focus', 'owner', 'requester', 'implicated']);

function searchParamType(name: string): 'date' | 'reference' | 'uri' | 'string' | 'token' {
  if (name.startsWith('_last') || name === 'date') return 'date';
  if (REFERENCES.has(name)) return 'reference';
  if (name === 'url') return 'uri';
  if (name === 'name') return 'string';
  return 'token';
}
