import type { AuditEvent, AuditEventEntity, Coding, Resource } from '@medplum/fhirtypes';
import { AUDIT_KEY_SYSTEM } from '@kc/protocols';

/**
 * Who looked at which patient's data: FHIR R4 AuditEvents in the shape of IHE Basic Audit Log Patterns (BALP
 * "PatientRead" and "PatientQuery"), so any EHR or SIEM reading AuditEvent?entity=Patient/x reads them right. Pure:
 * the access in, the AuditEvent out.
 */

/** One access to patient data through this API, as the interceptor saw it. */
export interface PatientDataAccess {
  interaction: 'read' | 'search' | 'operation';
  /** e.g. `GET /fhir/CarePlan?patient=Patient/1` (a search's query, a read's path). */
  request: string;
  /** `Patient/<id>` of every patient whose data the answer held (or the request named), each once. */
  patients: string[];
  /** The resource read (`CarePlan/<id>`), for a read. */
  resource?: string;
  /** HTTP status the caller got. */
  status: number;
  agent: {
    /** The token's subject: a user or a client id. */
    id?: string;
    fhirUser?: string;
    display?: string;
    /** The caller's network address. */
    address?: string;
  };
  /** A CDS Hooks call: the EHR user on whose screen the cards appear (`context.userId`). */
  onBehalfOf?: string;
  recorded: Date;
  /** Identifies this record: a retried write can be told from a second access. */
  id: string;
}

const EVENT_TYPE: Coding = {
  system: 'http://terminology.hl7.org/CodeSystem/audit-event-type',
  code: 'rest',
  display: 'RESTful Operation',
};
const INTERACTION: Record<PatientDataAccess['interaction'], Coding> = {
  read: { system: 'http://hl7.org/fhir/restful-interaction', code: 'read', display: 'read' },
  search: { system: 'http://hl7.org/fhir/restful-interaction', code: 'search-type', display: 'search type' },
  operation: { system: 'http://hl7.org/fhir/restful-interaction', code: 'operation', display: 'operation' },
};
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';

/** BALP: R for a read, E for a query or an operation; outcome 0 success, 4 refused (4xx), 8 failed (5xx). */
export function accessAuditEvent(access: PatientDataAccess): AuditEvent {
  const { agent } = access;
  const entities: AuditEventEntity[] = [
    ...access.patients.map((reference) => ({
      what: { reference },
      type: { system: ENTITY_TYPE, code: '1', display: 'Person' },
      role: { system: OBJECT_ROLE, code: '1', display: 'Patient' },
    })),
    ...(access.resource
      ? [
          {
            what: { reference: access.resource },
            type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
            role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' },
          },
        ]
      : []),
    // A query says what was asked; so does a read that names nothing else (a refused one).
    ...(access.interaction === 'read' && (access.patients.length || access.resource)
      ? []
      : [
          {
            type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
            role: { system: OBJECT_ROLE, code: '24', display: 'Query' },
            query: Buffer.from(access.request, 'utf8').toString('base64'),
          },
        ]),
  ];
  return {
    resourceType: 'AuditEvent',
    meta: { tag: [{ system: AUDIT_KEY_SYSTEM, code: access.id }] },
    type: EVENT_TYPE,
    subtype: [INTERACTION[access.interaction]],
    action: access.interaction === 'read' ? 'R' : 'E',
    recorded: access.recorded.toISOString(),
    outcome: access.status >= 500 ? '8' : access.status >= 400 ? '4' : '0',
    outcomeDesc: access.status >= 400 ? `HTTP ${access.status}` : undefined,
    agent: [
      {
        who: agent.fhirUser
          ? { reference: agent.fhirUser, display: agent.display }
          : agent.id
            ? { identifier: { value: agent.id }, display: agent.display }
            : { display: 'unauthenticated caller' },
        altId: agent.id,
        requestor: true,
        network: agent.address ? { address: agent.address, type: '2' } : undefined,
      },
      ...(access.onBehalfOf ? [{ who: { reference: access.onBehalfOf }, requestor: false }] : []),
    ],
    source: {
      observer: { display: 'ketamine-careplans API' },
      type: [
        {
          system: 'http://terminology.hl7.org/CodeSystem/security-source-type',
          code: '4',
          display: 'Application Server',
        },
      ],
    },
    entity: entities,
  } satisfies AuditEvent;
}

/** Each patient a FHIR answer holds data of (`subject`, `patient`, `for`, or the Patient itself), once. */
export function patientsIn(resources: Resource[]): string[] {
  const found = new Set<string>();
  for (const resource of resources) {
    if (resource.resourceType === 'Patient' && resource.id) found.add(`Patient/${resource.id}`);
    const r = resource as {
      subject?: { reference?: string };
      patient?: { reference?: string };
      for?: { reference?: string };
    };
    for (const ref of [r.subject?.reference, r.patient?.reference, r.for?.reference])
      if (ref && /^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(ref)) found.add(ref);
  }
  return [...found];
}
