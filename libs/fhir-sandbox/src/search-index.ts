import {
  convertToSearchableDates,
  convertToSearchableReferences,
  convertToSearchableStrings,
  convertToSearchableTokens,
  evalFhirPathTyped,
  getParsedExpressionForResourceType,
  globalSchema,
  type parseFhirPath,
  toTypedValue,
} from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';

/**
 * What the embedded store indexes a resource by: the token, reference, date and string search parameters of its
 * type, and the rows each takes on a resource (the values Medplum's matcher compares, lowercased as it compares
 * them). Pure: the store (sqlite-repository.ts) decides which parameters are indexed and writes the rows.
 */

/**
 * `absent`: a date parameter's companion (key `Task:authored-on:absent`), a row for each resource that has no value
 * for it, so a descending sort finds those (they come first) without reading every resource of the type.
 */
export type IndexKind = 'token' | 'reference' | 'date' | 'absent' | 'string';

/** The key of a date parameter's `absent` companion. */
export const absentKey = (dateKey: string) => `${dateKey}:absent`;

/**
 * A token, reference, date or string search parameter of one resource type, ready to evaluate. `string` covers the
 * `uri` parameters too: Medplum's matcher compares both the same way (a case-insensitive substring).
 */
export interface IndexedParam {
  code: string;
  /** `${resourceType}:${code}`, the key in the index tables. */
  key: string;
  kind: IndexKind;
  expression: string;
  atom: ReturnType<typeof parseFhirPath>;
  /**
   * A reference parameter with one target type (or `_compartment`) matches a bare id (`patient=123`), as Medplum's
   * matcher does: only its rows keep a tail (the id), so only they enter the tail index.
   */
  matchesBareId: boolean;
  /**
   * The top-level properties the expression starts from, when it is plain navigation from them (a resource without
   * any gives no value, so the evaluation is skipped); undefined when it must always be evaluated.
   */
  roots?: string[];
}

export interface TokenRow {
  system: string | null;
  value: string | null;
}

/** A resource's index rows: [parameter key, ...values] for each table. */
export interface IndexRows {
  tokens: [string, TokenRow][];
  refs: [string, string, string | null][];
  dates: [string, string, string][];
  /** Keys of the `absent` parameters the resource has no value for. */
  absent: string[];
  /** [parameter key, a value as Medplum's matcher reads it, lowercased]: the trigram index's text. */
  strings: [string, string][];
}

/** The kind of index a search parameter of this FHIR type gets; undefined for those only Medplum's matcher answers. */
function kindOf(type: string | undefined): IndexKind | undefined {
  if (type === 'token' || type === 'reference' || type === 'date') return type;
  if (type === 'string' || type === 'uri') return 'string';
  return undefined;
}

/** The token, reference, date and string search parameters of a type (Medplum's definitions, as loaded globally). */
export function searchParamsOf(resourceType: string): IndexedParam[] {
  const params: IndexedParam[] = [];
  for (const [code, sp] of Object.entries(globalSchema.types[resourceType]?.searchParams ?? {})) {
    const kind = kindOf(sp.type);
    if (!kind || !sp.expression) continue;
    let atom;
    try {
      // Only the branches of a shared parameter's union that can match this type ("AllergyIntolerance.patient |
      // CarePlan.subject... "), as Medplum's Postgres repository does: the others return nothing here, and each
      // costs a schema lookup that fails (~0.7 ms per write for identifier, patient, code, date).
      atom = getParsedExpressionForResourceType(resourceType, sp.expression);
    } catch {
      continue;
    }
    const param: IndexedParam = {
      code,
      key: `${resourceType}:${code}`,
      kind,
      expression: sp.expression,
      atom,
      matchesBareId: sp.target?.length === 1 || code === '_compartment',
      roots: rootProperties(resourceType, sp.expression),
    };
    params.push(param);
    // Never searched by a client (no filter has this code): indexed when a sort on the parameter needs it.
    if (kind === 'date') params.push({ ...param, code: `${code}:absent`, key: absentKey(param.key), kind: 'absent' });
  }
  return params;
}

/** The values each of the given search parameters takes on the resource (its index rows), computed once per write. */
export function indexRowsOf(resource: Resource, params: IndexedParam[]): IndexRows {
  const tokens: [string, TokenRow][] = [];
  const refs: [string, string, string | null][] = [];
  const dates: [string, string, string][] = [];
  const absent: string[] = [];
  const strings: [string, string][] = [];
  const typedResource = [toTypedValue(resource)];
  // A date parameter's ranges, for its `absent` companion (next in the list) to reuse.
  let lastDates: { key: string; ranges: [string, string][] } | undefined;
  for (const param of params) {
    if (param.kind === 'absent') {
      const ranges =
        lastDates && absentKey(lastDates.key) === param.key
          ? lastDates.ranges
          : datesOf(resource, typedResource, param);
      if (!ranges.length) absent.push(param.key);
      continue;
    }
    if (param.kind === 'date') {
      const ranges = datesOf(resource, typedResource, param);
      for (const [lo, hi] of ranges) dates.push([param.key, lo, hi]);
      lastDates = { key: param.key, ranges };
      continue;
    }
    const typed = valuesOf(resource, typedResource, param);
    if (!typed.length) continue;
    if (param.kind === 'token') {
      for (const t of convertToSearchableTokens(typed)) {
        tokens.push([
          param.key,
          { system: t.system ? t.system.toLowerCase() : null, value: t.value?.toLowerCase() ?? null },
        ]);
      }
    } else if (param.kind === 'reference') {
      for (const ref of convertToSearchableReferences(typed)) {
        if (typeof ref !== 'string') continue;
        const tail = param.matchesBareId && ref.includes('/') ? ref.slice(ref.lastIndexOf('/') + 1) : null;
        refs.push([param.key, ref, tail]);
      }
    } else if (param.kind === 'string') {
      for (const text of convertToSearchableStrings(typed)) strings.push([param.key, text.toLowerCase()]);
    }
  }
  return { tokens, refs, dates, absent, strings };
}

/** A string parameter's values on the resource as they are (not lowercased): what `:exact` compares. */
export function stringValuesOf(resource: Resource, param: IndexedParam): string[] {
  return convertToSearchableStrings(valuesOf(resource, [toTypedValue(resource)], param));
}

/**
 * The values a parameter's expression gives on the resource; none when it navigates only from properties the
 * resource lacks (not evaluated), or when the evaluation fails.
 */
function valuesOf(
  resource: Resource,
  typedResource: ReturnType<typeof toTypedValue>[],
  param: IndexedParam,
): ReturnType<typeof evalFhirPathTyped> {
  if (param.roots && !param.roots.some((root) => hasProperty(resource, root))) return [];
  try {
    return evalFhirPathTyped(param.atom, typedResource);
  } catch {
    return []; // MemoryRepository would fail the same evaluation at search time: never a match
  }
}

/** A missing lower / upper bound of a date range in the index: before and after every instant the index holds. */
export const OPEN_LO = '0000';
export const OPEN_HI = '9999';

/** A date parameter's [lo, hi] ranges on the resource (a missing bound is OPEN_LO / OPEN_HI); none when it has none. */
function datesOf(
  resource: Resource,
  typedResource: ReturnType<typeof toTypedValue>[],
  param: IndexedParam,
): [string, string][] {
  const ranges: [string, string][] = [];
  for (const period of convertToSearchableDates(valuesOf(resource, typedResource, param))) {
    if (period) ranges.push([period.start ?? OPEN_LO, period.end ?? OPEN_HI]);
  }
  return ranges;
}

/**
 * The top-level properties an expression navigates from on this type, when each of its branches for this type is
 * plain navigation (`Task.for.where(resolve() is Patient)`, `(Procedure.performed.ofType(dateTime))`): each yields
 * nothing from an empty start. Undefined when a branch could yield a value from nothing (`Patient.deceased.exists()
 * and ...`) or is not a path from this type or Resource: such expressions are always evaluated.
 */
function rootProperties(resourceType: string, expression: string): string[] | undefined {
  const navigation = new RegExp(
    `^\\(?${resourceType}\\.([A-Za-z]+)(\\.[A-Za-z]+|\\.where\\((?:[^()]|\\([^()]*\\))*\\)|\\.ofType\\([A-Za-z]+\\))*( as [A-Za-z]+)?\\)?$`,
  );
  const roots: string[] = [];
  for (const branch of expression.split('|').map((b) => b.trim())) {
    const from = /^\(?([A-Za-z]+)\./.exec(branch)?.[1];
    if (from && from !== resourceType && from !== 'Resource' && from !== 'DomainResource') continue; // another type's
    const root = navigation.exec(branch)?.[1];
    if (!root) return undefined;
    roots.push(root);
  }
  return roots;
}

/** A choice property (`performed`) is stored under its typed name (`performedDateTime`). */
function hasProperty(resource: Resource, root: string): boolean {
  if (root in resource) return true;
  for (const key in resource) if (key.startsWith(root)) return true;
  return false;
}
