import { scopeRefusal, scopesGranting, type Caller, type FhirAccess } from '@kc/auth';
import { READABLE_TYPES, type ReadableType } from './read-search-params';

/** Definitions, not anyone's record: a `patient/` scope on them is not bounded to its patient. */
const DEFINITIONS: ReadonlySet<ReadableType> = new Set([
  'PlanDefinition',
  'ActivityDefinition',
  'Questionnaire',
  'StructureDefinition',
  'ValueSet',
  'CodeSystem',
]);

/** What a token's SMART scopes allow of a read or search here: all it asks, only its launch patient's, or nothing. */
export type ReadScope = { allowed: true; patient?: string } | { allowed: false; reason: string };

/**
 * Whether the caller's scopes allow reading (`r`, by id) or searching (`s`) `type`. A `user/` or `system/` scope
 * allows it whole; a `patient/` scope only within the launch patient's record: a search must name that patient
 * (`patient` or `subject`, every value), and a read by id is allowed with `patient` set for the caller to check that
 * the resource is theirs. A token with no scope is bounded by its roles alone.
 */
export function readScope(
  caller: Caller,
  type: ReadableType,
  interaction: 'r' | 's',
  params: Readonly<Record<string, unknown>> = {},
): ReadScope {
  const { scopes } = caller;
  const access: FhirAccess = { resourceType: type, interaction, params };
  if (!scopes || scopesGranting(scopes, access, ['user', 'system']).length) return { allowed: true };
  const refused = scopeRefusal(scopes, [access], ['patient', 'user', 'system']);
  if (refused) return { allowed: false, reason: refused };
  if (DEFINITIONS.has(type)) return { allowed: true };
  const patient = caller.patient;
  if (!patient || !(READABLE_TYPES[type] as readonly string[]).includes('patient'))
    return {
      allowed: false,
      reason: `A patient/ scope reads only its launch patient's record, and this token names none`,
    };
  if (interaction === 'r') return { allowed: true, patient };
  const named = ['patient', 'subject'].flatMap((p) => valuesOf(params[p]));
  if (!named.length || !named.every((v) => samePatient(v, patient)))
    return {
      allowed: false,
      reason: `A patient/ scope reads only its launch patient's record: search with patient=${patient}`,
    };
  return { allowed: true, patient };
}

function valuesOf(value: unknown): string[] {
  return (Array.isArray(value) ? value : [value])
    .filter((v): v is string => typeof v === 'string')
    .flatMap((v) => v.split(','));
}

/** `Patient/1` and `1` name the same patient as a search parameter. */
function samePatient(value: string, patient: string): boolean {
  return value === patient || `Patient/${value}` === patient;
}
