import type { Bundle } from '@medplum/fhirtypes';
import { badRequest, RESOURCE_ID_PATTERN } from '@kc/common';

/** What an EHR may search on, per type; anything else is refused rather than forwarded to the FHIR server. */
export const READABLE_TYPES = {
  CarePlan: ['patient', 'subject', 'status', 'intent', 'instantiates-canonical', 'date', '_id', '_lastUpdated'],
  Task: [
    'patient',
    'subject',
    'status',
    'business-status',
    'based-on',
    'focus',
    'code',
    'owner',
    'identifier',
    '_id',
    '_lastUpdated',
  ],
  // The orders approval creates, and the proposals they came from (intent tells them apart).
  MedicationRequest: ['patient', 'subject', 'status', 'intent', 'identifier', 'requester', '_id', '_lastUpdated'],
  // Contraindications found for a plan (implicated), and whether a clinician overrode them (mitigation).
  DetectedIssue: ['patient', 'implicated', 'code', 'identifier', '_id', '_lastUpdated'],
  // Recorded checks: the answers (based-on the CarePlan), and the scores and effects extracted from them (derived-from).
  QuestionnaireResponse: [
    'patient',
    'subject',
    'based-on',
    'questionnaire',
    'authored',
    'status',
    '_id',
    '_lastUpdated',
  ],
  Observation: ['patient', 'subject', 'code', 'date', 'derived-from', 'based-on', 'category', '_id', '_lastUpdated'],
  // What a CarePlan instantiates and its requests and checks follow (instantiatesCanonical, questionnaire): the
  // catalog's, published to the FHIR server at start, and an EHR's own. By url, exactly (exactlyTheUrlAsked).
  PlanDefinition: ['url', 'version', 'name', 'status', '_id', '_lastUpdated'],
  ActivityDefinition: ['url', 'version', 'name', 'status', '_id', '_lastUpdated'],
  Questionnaire: ['url', 'version', 'name', 'status', '_id', '_lastUpdated'],
  // What the resources read here conform to (docs/guide/profiles.md): the profiles the CapabilityStatement lists as
  // supportedProfile, the extensions they use, and the service's codes. Since session 59.
  StructureDefinition: ['url', 'version', 'name', 'status', 'type', '_id', '_lastUpdated'],
  ValueSet: ['url', 'version', 'name', 'status', '_id', '_lastUpdated'],
  CodeSystem: ['url', 'version', 'name', 'status', '_id', '_lastUpdated'],
  // The access audit trail (apps/api/src/audit): for administrators only (ADMIN_ONLY_TYPES).
  AuditEvent: ['entity', 'agent', 'date', 'action', 'outcome', 'subtype', '_id', '_lastUpdated'],
} as const;
/** Types only the admin role reads: who saw which patient is not for every clinician or integration. */
export const ADMIN_ONLY_TYPES: ReadonlySet<string> = new Set(['AuditEvent']);
export type ReadableType = keyof typeof READABLE_TYPES;

/** Paging parameters servers put in their next links (Medplum: _offset/_cursor, HAPI: _getpages). */
const PAGING = ['_count', '_offset', '_cursor', '_getpages', '_getpagesoffset', '_sort', '_bundletype', '_pretty'];
/**
 * `_total`: servers count every match only when asked (Medplum, and the embedded store, as Medplum does); a page
 * that shows everything carries its total anyway.
 */
const TOTALS = new Set(['accurate', 'estimate', 'none']);
const VALUE = /^[A-Za-z0-9\-._:/|,$]{1,512}$/;
/**
 * A `_cursor` names the ids already given at its instant (Medplum's, the embedded store's): resources written in one
 * transaction share an instant, so a plan's or a bulk load's cursor holds dozens of ids. Up to what a request line
 * can carry here (Node's 16 KB header limit); at 512 an EHR's sync stopped with 400 after 13 ids.
 */
const CURSOR = /^[A-Za-z0-9\-._:,]{1,16000}$/;
const REFERENCE_PARAMS = new Set([
  'patient',
  'subject',
  'based-on',
  'focus',
  'owner',
  'requester',
  'implicated',
  'entity',
  'agent',
  'derived-from',
]);
const REFERENCE = new RegExp(`^([A-Z][A-Za-z]{1,40}/)?${RESOURCE_ID_PATTERN}$`);

export function readableType(type: string): ReadableType {
  // Own keys only: `constructor`, `__proto__` or `toString` are "in" every object.
  if (!Object.hasOwn(READABLE_TYPES, type))
    throw badRequest(
      `This API serves ${Object.keys(READABLE_TYPES).join(', ')}; ${type.slice(0, 40)} is not one of them`,
    );
  return type as ReadableType;
}

/** Allow-lists and checks the search parameters: one value each, plain characters, no smuggled parameters. */
export function readSearchParams(type: ReadableType, query: Record<string, unknown>): Record<string, string> {
  const allowed = new Set<string>([...READABLE_TYPES[type], ...PAGING, '_total']);
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(query)) {
    const base = key.split(':')[0];
    if (!allowed.has(base) || !Object.hasOwn(query, key) || !/^[a-z_-]+(:[a-z]+)?$/i.test(key))
      throw badRequest(`Search parameter ${key.slice(0, 40)} is not supported for ${type}`);
    if (typeof value !== 'string') throw badRequest(`Search parameter ${key} must appear once`);
    if (!(base === '_cursor' ? CURSOR : VALUE).test(value) || value.includes('..'))
      throw badRequest(`Search parameter ${key} has an unsupported value`);
    if (REFERENCE_PARAMS.has(base) && !REFERENCE.test(value))
      throw badRequest(`Search parameter ${key} must be a reference like Patient/123`);
    params[key] = value;
  }
  if (params._total !== undefined && !TOTALS.has(params._total))
    throw badRequest('_total must be accurate, estimate or none');
  const count = params._count === undefined ? 20 : Number(params._count);
  if (!Number.isInteger(count) || count < 0 || count > 100) throw badRequest('_count must be 0 to 100');
  params._count = String(count);
  return params;
}

/**
 * Only what this API serves leaves it: entries of the searched type (and the server's search outcome). A paging
 * link (`_getpages`, a server-wide page id) could otherwise be pointed at another search's page of any type.
 */
/**
 * A definition searched by `url` (a FHIR uri: that url exactly): a server answering it as Medplum's matcher does (a
 * substring, as the embedded store does) also finds `<url>-v2` and the like, left out here.
 */
export function exactlyTheUrlAsked(bundle: Bundle, url: string | undefined): Bundle {
  if (url === undefined) return bundle;
  const entry = bundle.entry?.filter((e) => !e.resource || !('url' in e.resource) || e.resource.url === url);
  return { ...bundle, entry };
}

export function onlyEntriesOf(bundle: Bundle, type: ReadableType): Bundle {
  const entry = bundle.entry?.filter(
    (e) =>
      e.resource?.resourceType === type ||
      (e.resource?.resourceType === 'OperationOutcome' && e.search?.mode === 'outcome'),
  );
  return { ...bundle, entry };
}
