import type { Group } from '@medplum/fhirtypes';
import { elementsAsked } from './export-elements';

/**
 * A Bulk Data export request (FHIR Bulk Data Access IG, `$export`) as the client sent it, checked: which level, which
 * resource types, since when, for which patients. Pure: the API passes in what the caller may read; the answer is the
 * export to run, or why not (a 4xx for the caller).
 */

/**
 * System level (`/fhir/$export`), every patient's data (`/fhir/Patient/$export`), or the data of a Group's patients
 * (`/fhir/Group/<id>/$export`: a cohort the EHR keeps on the FHIR server).
 */
export type ExportLevel = 'system' | 'patient' | 'group';

/** The one format written: FHIR resources as newline-delimited JSON. */
export const NDJSON = 'application/fhir+ndjson';
/** What `_outputFormat` may say for it (the IG's abbreviations). */
const NDJSON_NAMES = new Set([NDJSON, 'application/ndjson', 'ndjson']);

/**
 * Parameters the IG defines that this service does not support: refused by name, or ignored (and said so) when the
 * client asks for lenient handling (`Prefer: handling=lenient`), as the IG provides.
 */
const UNSUPPORTED = ['includeAssociatedData', 'organizeOutputBy', '_until', 'allowPartialManifests'];

export interface ExportRequest {
  level: ExportLevel;
  /** In the order written: as asked, else the order of the caller's exportable types. */
  types: string[];
  /** Only resources changed after this instant (`_since`). */
  since?: string;
  /** Per type, the search a `_typeFilter` narrows it to (its parameters, each with its values). */
  filters?: Record<string, Record<string, string[]>>;
  /** Per type (`*`: every type), the root elements `_elements` keeps (withElements). */
  elements?: Record<string, string[]>;
  /**
   * These patients' data alone (`Patient/<id>`): those a POST names, a Group's members (all of them, or those of them a
   * POST names). Undefined: every patient's; empty: nobody's (a Group with no patient).
   */
  patients?: string[];
}

export interface KickOff {
  level: ExportLevel;
  method: 'GET' | 'POST';
  /** Each parameter's values: a query's, or a POSTed Parameters resource's. */
  params: Record<string, string[]>;
  prefer?: string;
  accept?: string;
  /** Group level: the Group's patients (groupPatients), read by the caller before asking. */
  groupMembers?: string[];
}

/** What the caller may export here (their role and scopes decided), and what this API exports at all. */
export interface ExportableTypes {
  /** Every type this API exports at this level. */
  known: readonly string[];
  /** Those the caller may read, in the order a default export writes them. */
  allowed: readonly string[];
  /** Per type, the search parameters a `_typeFilter` may use (what the read API allows). */
  searchParams: Readonly<Record<string, readonly string[]>>;
  /** Exported only when asked for by name (`_type`): the access audit trail. */
  onlyWhenNamed: ReadonlySet<string>;
}

export type KickOffAnswer =
  /** `ignored`: unsupported parameters left out under `Prefer: handling=lenient`. */
  | { accepted: true; request: ExportRequest; ignored: string[] }
  | { accepted: false; status: 400 | 403 | 406; reason: string };

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const PATIENT_REFERENCE = /^Patient\/[A-Za-z0-9\-.]{1,64}$/;

/** The export a kick-off asks for, or why it is refused (the IG's rules; the first problem found). */
export function exportRequested(kickOff: KickOff, types: ExportableTypes): KickOffAnswer {
  const refused = (status: 400 | 403 | 406, reason: string): KickOffAnswer => ({ accepted: false, status, reason });
  if (!types.allowed.length) return refused(403, 'This token may read none of the types this server exports');
  if (!/\brespond-async\b/.test(kickOff.prefer ?? ''))
    return refused(400, 'A bulk export runs in the background: send the header Prefer: respond-async');
  if (kickOff.accept && !acceptsFhirJson(kickOff.accept))
    return refused(406, `A bulk export's status and errors are FHIR JSON: send Accept: application/fhir+json`);
  // Own keys only: a parameter named `constructor` or `toString` is a parameter, not Object's.
  const value = (name: string): string[] => (Object.hasOwn(kickOff.params, name) ? kickOff.params[name] : []);
  const unsupported = UNSUPPORTED.filter((name) => value(name).length);
  const lenient = /\bhandling=lenient\b/.test(kickOff.prefer ?? '');
  if (unsupported.length && !lenient)
    return refused(
      400,
      `Not supported by this server: ${unsupported.join(', ')} (send Prefer: handling=lenient to have them ignored)`,
    );
  const unknown = Object.keys(kickOff.params).filter((name) => !KNOWN_PARAMS.has(name) && !UNSUPPORTED.includes(name));
  if (unknown.length) return refused(400, `Unknown parameter(s) for $export: ${unknown.join(', ')}`);

  const formats = value('_outputFormat');
  if (formats.length > 1 || (formats.length && !NDJSON_NAMES.has(formats[0])))
    return refused(400, `_outputFormat must be ${NDJSON} (or application/ndjson, ndjson), got "${formats.join(',')}"`);

  const sinces = value('_since');
  if (sinces.length > 1) return refused(400, '_since may be given once');
  const since = sinces[0];
  if (since !== undefined && (!INSTANT.test(since) || Number.isNaN(Date.parse(since))))
    return refused(400, `_since must be a FHIR instant with a time zone, such as 2026-01-01T00:00:00Z, got "${since}"`);

  const patients = value('patient');
  if (patients.length && (kickOff.level === 'system' || kickOff.method !== 'POST'))
    return refused(400, 'patient is a parameter of POST /Patient/$export and POST /Group/<id>/$export only');
  const badPatient = patients.find((p) => !PATIENT_REFERENCE.test(p));
  if (badPatient !== undefined)
    return refused(400, `patient must be a reference like Patient/123, got "${badPatient}"`);

  const asked = unique(
    value('_type')
      .flatMap((v) => v.split(','))
      .map((t) => t.trim()),
  );
  const notKnown = asked.filter((t) => !types.known.includes(t));
  if (notKnown.length)
    return refused(
      400,
      `This server does not export ${notKnown.join(', ')} at this level; it exports ${types.known.join(', ')}`,
    );
  const notAllowed = asked.filter((t) => !types.allowed.includes(t));
  if (notAllowed.length) return refused(403, `This token may not read ${notAllowed.join(', ')}`);
  const chosen = asked.length ? asked : types.allowed.filter((t) => !types.onlyWhenNamed.has(t));
  if (!chosen.length) return refused(403, 'This token may export none of these types unless it names them in _type');

  const filters = typeFilters(value('_typeFilter'), chosen, types);
  if ('reason' in filters) return refused(400, filters.reason);
  const elements = elementsAsked(value('_elements'), chosen);
  if ('reason' in elements) return refused(400, elements.reason);

  return {
    accepted: true,
    request: {
      level: kickOff.level,
      types: chosen,
      ...(since !== undefined && { since: new Date(since).toISOString() }),
      ...(Object.keys(filters.byType).length && { filters: filters.byType }),
      ...(Object.keys(elements.byType).length && { elements: elements.byType }),
      ...exportedPatients(kickOff, unique(patients)),
    },
    ignored: unsupported,
  };
}

/** Whose data: those named, a Group's members (narrowed to those named), or everyone's (no `patients`). */
function exportedPatients(kickOff: KickOff, named: string[]): Pick<ExportRequest, 'patients'> {
  if (kickOff.level === 'group') {
    const members = kickOff.groupMembers ?? [];
    return { patients: named.length ? members.filter((m) => named.includes(m)) : members };
  }
  return named.length ? { patients: named } : {};
}

/** A Group's patients, as the IG exports a Group: its members that are Patients and not marked inactive. */
export function groupPatients(group: Pick<Group, 'member'>): string[] {
  const patients = (group.member ?? [])
    .filter((m) => !m.inactive)
    .map((m) => m.entity?.reference)
    .filter((ref): ref is string => typeof ref === 'string' && PATIENT_REFERENCE.test(ref));
  return unique(patients);
}

const KNOWN_PARAMS = new Set(['_outputFormat', '_since', '_type', 'patient', '_typeFilter', '_elements']);

/** A filter's value: anything printable, as long as a search value here may be. */
const FILTER_VALUE = /^[!-~\u00a0-\uffff]{1,512}$/;

/**
 * `_typeFilter` (`Task?status=draft&code=...`, comma-separated or repeated): each a search of a type being exported,
 * with parameters the read API allows for it; one per type (the IG ORs several for a type, which would write a
 * resource matching two of them twice).
 */
function typeFilters(
  values: string[],
  chosen: string[],
  types: ExportableTypes,
): { byType: Record<string, Record<string, string[]>> } | { reason: string } {
  const byType: Record<string, Record<string, string[]>> = {};
  for (const filter of values.flatMap((v) => v.split(',')).filter(Boolean)) {
    const [type, query = ''] = filter.split(/\?(.*)/s, 2);
    if (!chosen.includes(type))
      return { reason: `_typeFilter ${type} is not a type being exported (${chosen.join(', ')})` };
    if (byType[type]) return { reason: `One _typeFilter per resource type is supported; ${type} has several` };
    const allowed = Object.hasOwn(types.searchParams, type) ? types.searchParams[type] : [];
    const params: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
    for (const [name, value] of new URLSearchParams(query)) {
      if (!allowed.includes(name))
        return { reason: `_typeFilter ${type} cannot search by ${name}; it may use ${allowed.join(', ')}` };
      if (!FILTER_VALUE.test(value)) return { reason: `_typeFilter ${type}: ${name} has no usable value` };
      (params[name] ??= []).push(value);
    }
    if (!Object.keys(params).length) return { reason: `_typeFilter ${type} names no search parameter` };
    byType[type] = { ...params };
  }
  return { byType };
}

/** FHIR JSON, any JSON, or anything: what an `Accept` header allows for the status's OperationOutcomes. */
function acceptsFhirJson(accept: string): boolean {
  return accept
    .split(',')
    .map((part) => part.split(';')[0].trim().toLowerCase())
    .some((type) => ['application/fhir+json', 'application/json', '*/*', 'application/*'].includes(type));
}

function unique(values: string[]): string[] {
  return [...new Set(values.filter(Boolean))];
}
