/**
 * A Bulk Data export request (FHIR Bulk Data Access IG, `$export`) as the client sent it, checked: which level, which
 * resource types, since when, for which patients. Pure: the API passes in what the caller may read; the answer is the
 * export to run, or why not (a 4xx for the caller).
 */

/** System level (`/fhir/$export`) or every patient's data (`/fhir/Patient/$export`). Group level is not offered. */
export type ExportLevel = 'system' | 'patient';

/** The one format written: FHIR resources as newline-delimited JSON. */
export const NDJSON = 'application/fhir+ndjson';
/** What `_outputFormat` may say for it (the IG's abbreviations). */
const NDJSON_NAMES = new Set([NDJSON, 'application/ndjson', 'ndjson']);

/** Parameters the IG defines that this service does not support: refused by name rather than ignored. */
const UNSUPPORTED = ['_typeFilter', '_elements', 'includeAssociatedData', 'organizeOutputBy', '_until'];

export interface ExportRequest {
  level: ExportLevel;
  /** In the order written: as asked, else the order of the caller's exportable types. */
  types: string[];
  /** Only resources changed after this instant (`_since`). */
  since?: string;
  /** Patient level, POST only: these patients' data alone (`Patient/<id>`). */
  patients?: string[];
}

export interface KickOff {
  level: ExportLevel;
  method: 'GET' | 'POST';
  /** Each parameter's values: a query's, or a POSTed Parameters resource's. */
  params: Record<string, string[]>;
  prefer?: string;
  accept?: string;
}

/** What the caller may export here (their role and scopes decided), and what this API exports at all. */
export interface ExportableTypes {
  /** Every type this API exports at this level. */
  known: readonly string[];
  /** Those the caller may read, in the order a default export writes them. */
  allowed: readonly string[];
  /** Exported only when asked for by name (`_type`): the access audit trail. */
  onlyWhenNamed: ReadonlySet<string>;
}

export type KickOffAnswer =
  { accepted: true; request: ExportRequest } | { accepted: false; status: 400 | 403 | 406; reason: string };

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
  if (unsupported.length) return refused(400, `Not supported by this server: ${unsupported.join(', ')}`);
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
  if (patients.length && (kickOff.level !== 'patient' || kickOff.method !== 'POST'))
    return refused(400, 'patient is a parameter of POST /Patient/$export only');
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

  return {
    accepted: true,
    request: {
      level: kickOff.level,
      types: chosen,
      ...(since !== undefined && { since: new Date(since).toISOString() }),
      ...(patients.length && { patients: unique(patients) }),
    },
  };
}

const KNOWN_PARAMS = new Set(['_outputFormat', '_since', '_type', 'patient']);

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
