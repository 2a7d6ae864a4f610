/**
 * SMART on FHIR resource scopes (App Launch 1.0 `read`/`write`/`*`, 2.0 `cruds` with an optional query), as a token
 * grants them. Pure: what a scope string grants, and whether a request is within it.
 */

/** Whose data: the launch patient's, what the signed-in user may see, or a backend service's. */
export type ScopeContext = 'patient' | 'user' | 'system';
/** SMART 2.0's interactions: create, read (by id), update, delete, search. */
export type ScopeInteraction = 'c' | 'r' | 'u' | 'd' | 's';

export interface SmartScope {
  context: ScopeContext;
  /** A resource type, or `*` for every type. */
  resourceType: string;
  interactions: ReadonlySet<ScopeInteraction>;
  /** SMART 2.0 granular scope (`patient/Observation.rs?category=laboratory`): only requests naming these params. */
  query?: ReadonlyArray<[string, string]>;
  /** As the token wrote it, for messages. */
  text: string;
}

const V1: Record<string, ScopeInteraction[]> = {
  read: ['r', 's'],
  write: ['c', 'u', 'd'],
  '*': ['c', 'r', 'u', 'd', 's'],
};
/** SMART 2.0: the letters in this order, each at most once. */
const V2 = /^c?r?u?d?s?$/;
const RESOURCE_SCOPE = /^(patient|user|system)\/([A-Za-z]+|\*)\.([a-z*]+)(\?.*)?$/;

/**
 * The resource scopes of a token's `scope` (space-separated, as SMART issues it) or `scp` (an array, as some
 * authorization servers do) claim. Undefined when it has none: a token that names no resource scope is bounded by
 * its roles alone (`npm run token`, an identity provider that issues roles); other scopes (`openid`, `fhirUser`,
 * `launch`, `offline_access`) are ignored, and so is a resource scope that does not parse (it grants nothing).
 */
export function smartScopesOf(claims: { scope?: unknown; scp?: unknown }): SmartScope[] | undefined {
  const words =
    typeof claims.scope === 'string'
      ? claims.scope.split(/\s+/)
      : Array.isArray(claims.scp)
        ? claims.scp.filter((s): s is string => typeof s === 'string')
        : [];
  const scopes = words.flatMap((text) => {
    const match = RESOURCE_SCOPE.exec(text);
    if (!match) return [];
    const [, context, resourceType, permission, query] = match;
    const interactions = V1[permission] ?? (V2.test(permission) ? ([...permission] as ScopeInteraction[]) : []);
    if (!interactions.length) return [];
    return [
      {
        context: context as ScopeContext,
        resourceType,
        interactions: new Set(interactions),
        query: query ? [...new URLSearchParams(query.slice(1)).entries()] : undefined,
        text,
      },
    ];
  });
  const named = words.some((w) => /^(patient|user|system)\//.test(w));
  return named ? scopes : undefined;
}

/** A request on FHIR data: its type, what it does, and for a search its parameters. */
export interface FhirAccess {
  resourceType: string;
  interaction: ScopeInteraction;
  params?: Readonly<Record<string, unknown>>;
}

/**
 * The scopes of `scopes` that grant `access`, in the contexts given (the read API takes the launch patient's too; an
 * action on any patient's data takes `user` and `system` only). A granular scope grants a search only when the search
 * names each of its parameters with its value, and grants nothing else.
 */
export function scopesGranting(
  scopes: readonly SmartScope[],
  access: FhirAccess,
  contexts: readonly ScopeContext[] = ['patient', 'user', 'system'],
): SmartScope[] {
  return scopes.filter(
    (s) =>
      contexts.includes(s.context) &&
      (s.resourceType === '*' || s.resourceType === access.resourceType) &&
      s.interactions.has(access.interaction) &&
      (!s.query ||
        (access.interaction === 's' && s.query.every(([k, v]) => paramValues(access.params, k).includes(v)))),
  );
}

function paramValues(params: Readonly<Record<string, unknown>> | undefined, name: string): string[] {
  const value = params?.[name];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}

/** What a scope would have to say to grant `access`, for the refusal's message (SMART 2.0 spelling). */
export function scopeNeeded(access: FhirAccess, context: ScopeContext = 'user'): string {
  return `${context}/${access.resourceType}.${access.interaction}`;
}

/**
 * Why a token's scopes do not grant every one of `accesses` (the first refused), or undefined when they do, or when it
 * names no scope (its roles alone bound it).
 */
export function scopeRefusal(
  scopes: readonly SmartScope[] | undefined,
  accesses: readonly FhirAccess[],
  contexts: readonly ScopeContext[] = ['user', 'system'],
): string | undefined {
  if (!scopes) return undefined;
  const refused = accesses.find((a) => !scopesGranting(scopes, a, contexts).length);
  if (!refused) return undefined;
  const granted = scopes.map((s) => s.text).join(' ') || 'no resource scope that parses';
  const context = scopes.length && scopes.every((s) => s.context === 'system') ? 'system' : 'user';
  return `The token's scopes do not allow this: it needs ${scopeNeeded(refused, context)} (or wider), and grants ${granted}`;
}
