import { badRequest, RESOURCE_ID_PATTERN, TASK_OWNER_REFERENCE } from '@kc/common';
import { clinicInstant, UTC_ZONE } from '@kc/protocols';
import { decodeCursor, UNASSIGNED, type WorklistIndexQuery } from '@kc/worklist-index';

/**
 * The parsed query is the read model's query: patient id, protocol canonical, kind of Task, due bounds, overdue, page
 * size, cursor.
 */
export type WorklistQuery = WorklistIndexQuery;

const PATIENT = new RegExp(`^(Patient/)?(${RESOURCE_ID_PATTERN})$`);

/**
 * Validates worklist (and to-do list) query parameters; anything unexpected is a 400 rather than an unfiltered list.
 * `kinds`: the kinds of Task the protocols generate (ProtocolCatalog.taskKinds), the only ones `kind` takes.
 * `me`: the caller's FHIR user (its token's fhirUser), what `owner=me` stands for.
 */
export function parseWorklistQuery(
  query: Record<string, unknown>,
  kinds: readonly string[] = [],
  me?: string,
  zone = UTC_ZONE,
): WorklistQuery {
  const allowed = new Set([
    'patient',
    'protocol',
    'kind',
    'owner',
    'due-before',
    'due-after',
    'overdue',
    'count',
    'cursor',
  ]);
  for (const key of Object.keys(query))
    if (!allowed.has(key)) throw badRequest(`Unknown worklist parameter ${key}; use ${[...allowed].join(', ')}`);
  for (const [key, value] of Object.entries(query))
    if (typeof value !== 'string') throw badRequest(`Parameter ${key} may appear once`);
  const q = query as Record<string, string | undefined>;
  const patient = q.patient === undefined ? undefined : PATIENT.exec(q.patient)?.[2];
  if (q.patient !== undefined && !patient) throw badRequest('patient must be a Patient id or reference');
  if (q.protocol !== undefined && !/^[A-Za-z0-9\-.:/|]{1,256}$/.test(q.protocol))
    throw badRequest('protocol must be a protocol id or canonical URL');
  if (q.kind !== undefined && !kinds.includes(q.kind)) throw badRequest(`kind must be one of ${kinds.join(', ')}`);
  return {
    patient,
    protocol: q.protocol,
    kind: q.kind,
    owner: owner(q.owner, me),
    dueBefore: date(q['due-before'], 'due-before', zone),
    dueAfter: date(q['due-after'], 'due-after', zone),
    overdue: q.overdue === undefined ? undefined : bool(q.overdue),
    count: int(q.count, 'count', 20, 1, 100),
    after: cursor(q.cursor),
  };
}

/** `me` (the caller), `none` (nobody's yet) or a reference such as Practitioner/123. */
function owner(value: string | undefined, me: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value === 'none') return UNASSIGNED;
  if (value === 'me') {
    if (!me)
      throw badRequest(
        'owner=me needs a token that names its FHIR user (claim fhirUser); give owner=Practitioner/<id>',
      );
    return me;
  }
  if (!TASK_OWNER_REFERENCE.test(value))
    throw badRequest('owner must be me, none, or a reference such as Practitioner/123');
  return value;
}

function cursor(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const after = /^[A-Za-z0-9_-]{1,200}$/.test(value) ? decodeCursor(value) : undefined;
  if (!after) throw badRequest('cursor must be the value of a worklist next link');
  return after;
}

/** A date alone is that day from midnight in the clinic (`zone`); a dateTime is its instant. */
function date(value: string | undefined, name: string, zone: string): Date | undefined {
  if (value === undefined) return undefined;
  const parsed = /^\d{4}-\d{2}-\d{2}/.test(value) ? clinicInstant(value, zone) : undefined;
  if (!parsed) throw badRequest(`${name} must be a date (YYYY-MM-DD) or dateTime`);
  return parsed;
}

function bool(value: string): boolean {
  if (value !== 'true' && value !== 'false') throw badRequest('overdue must be true or false');
  return value === 'true';
}

function int(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw badRequest(`${name} must be a whole number from ${min} to ${max}`);
  return n;
}
