import type { SQLInputValue } from 'node:sqlite';
import {
  OperationOutcomeError,
  Operator,
  badRequest,
  globalSchema,
  parseSearchRequest,
  splitSearchOnComma,
  toPeriod,
  type Filter,
  type SearchRequest,
} from '@medplum/core';
import { absentKey, type IndexedParam } from './search-index';

/**
 * How the embedded store answers each filter of a search: an SQL condition over an index table, a forward chain
 * resolved as MemoryRepository resolves it, or (neither) Medplum's matcher over the candidates. Pure: the store
 * (sqlite-repository.ts) runs the SQL.
 */

/** One filter answered by the index: an SQL condition over one index table, for one resource's rows (alias `x`). */
export interface IndexedFilter {
  table: 'token' | 'ref' | 'date' | 'absent' | 'str';
  key: string;
  /** Condition on `x`, without the `x.p = ?` part. */
  where: string;
  params: SQLInputValue[];
  /**
   * Date filters with one value: where every matching row's `lo` lies (inclusive), given the most any row of the
   * parameter spans (`hi - lo`, ms), so a walk of the index in `lo` order can seek to them. An upper bound on `lo`
   * holds whatever the span; a lower one (`ge`, `gt`, `eq`) is the filter's bound less the span.
   */
  loWithin?: (spanMs: number) => LoBounds;
  /**
   * A full-text filter: the FTS5 query (`where`'s parameter) that finds its rows through the trigram index
   * (`str_text`) when it drives a search; `where` checks one row at a time.
   */
  match?: string;
}

/** Bounds on the index rows' `lo` (ISO instants, as the index writes them). */
export interface LoBounds {
  min?: string;
  max?: string;
}

/**
 * The SQL condition for a filter on an indexed parameter, when the index answers it exactly; undefined when only
 * Medplum's matcher can answer it. Each branch mirrors @medplum/core's match.ts for the same operator.
 */
export function indexCondition(param: IndexedParam, filter: Filter): IndexedFilter | undefined {
  const values = splitSearchOnComma(filter.value);
  const ors: string[] = [];
  const params: SQLInputValue[] = [];
  switch (param.kind) {
    case 'token': {
      if (filter.operator !== Operator.EQUALS) return undefined;
      // Every value looked up (`x.value IN (...)` first): with several OR'd terms SQLite otherwise walks every
      // index row of the parameter (the follow-up worker's `identifier=k1,k2,k3` read all 100k Task keys).
      const looked: string[] = [];
      for (const filterValue of values) {
        if (filterValue.includes('|')) {
          const [system, value] = filterValue.split('|').map((s) => s.toLowerCase());
          if (!system && !value) continue;
          if (!system) {
            // `+x.system`: look up by value (selective), never by system (every Task key shares one).
            ors.push('(x.value = ? AND +x.system IS NULL)');
            params.push(value);
            looked.push(value);
          } else if (!value) {
            ors.push('x.system = ?');
            params.push(system);
          } else {
            ors.push('(x.value = ? AND +x.system = ?)');
            params.push(value, system);
            looked.push(value);
          }
        } else {
          ors.push('x.value = ?');
          params.push(filterValue.toLowerCase());
          looked.push(filterValue.toLowerCase());
        }
      }
      if (!ors.length) return { table: 'token', key: param.key, where: '0', params };
      if (ors.length > 1 && looked.length === ors.length)
        return {
          table: 'token',
          key: param.key,
          where: `x.value IN (${looked.map(() => '?').join(', ')}) AND (${ors.join(' OR ')})`,
          params: [...looked, ...params],
        };
      return { table: 'token', key: param.key, where: ors.join(' OR '), params };
    }
    case 'reference': {
      if (filter.operator !== Operator.EQUALS || filter.value === '') return undefined;
      for (const filterValue of values) {
        if (filterValue.includes('/')) {
          ors.push('x.ref = ?');
          params.push(filterValue);
        } else if (param.matchesBareId) {
          ors.push('x.tail = ?');
          params.push(filterValue);
        }
      }
      return { table: 'ref', key: param.key, where: ors.length ? ors.join(' OR ') : '0', params };
    }
    case 'string':
      return stringCondition(param, filter, values);
    case 'date': {
      // `:missing`: a row of the parameter's `absent` companion (no value) or of the parameter itself (a value).
      if (filter.operator === Operator.MISSING && (filter.value === 'true' || filter.value === 'false'))
        return filter.value === 'true'
          ? { table: 'absent', key: absentKey(param.key), where: '1', params: [] }
          : { table: 'date', key: param.key, where: '1', params: [] };
      // match.ts's matchesDateValue, over the index's [lo, hi] (a missing bound is search-index.ts OPEN_LO / OPEN_HI).
      const op = filter.operator;
      const twoBounds = op === Operator.EQUALS || op === Operator.APPROXIMATELY;
      const condition = DATE_CONDITIONS[op];
      if (!twoBounds && !condition) return undefined;
      let loWithin: IndexedFilter['loWithin'];
      for (const filterValue of values) {
        const period = toPeriod(filterValue);
        if (!period) continue;
        if (twoBounds) {
          ors.push('(x.lo < ? AND x.hi > ?)');
          params.push(period.end as string, period.start as string);
          const [start, end] = [period.start as string, period.end as string];
          loWithin = (spanMs) => ({ min: earlierBy(start, spanMs), max: end });
        } else {
          ors.push(condition!.sql);
          const bound = condition!.bound === 'start' ? (period.start as string) : (period.end as string);
          params.push(bound);
          const within = condition!.loWithin;
          loWithin = (spanMs) => within(bound, spanMs);
        }
      }
      return {
        table: 'date',
        key: param.key,
        where: ors.length ? ors.join(' OR ') : '0',
        params,
        loWithin: values.length === 1 ? loWithin : undefined,
      };
    }
  }
}

/** The trigram index finds no text shorter than a trigram: such a value is left to the matcher over every resource. */
const TRIGRAM = 3;

/**
 * match.ts compares a string or uri parameter as a substring of the lowercased values (`includes`), whatever the
 * modifier (`:contains`, `:exact`, none). The `str_text` trigram index holds those values lowercased by the same
 * `toLowerCase` and folds nothing more (`case_sensitive 1`), so an FTS5 phrase of the lowercased text is that same
 * substring test: exact, answered by the index alone. (Folded, as FTS5 does by default, `ſ` would find `s` and `ς`
 * find `σ`, which the matcher does not.) Negations (`:not`) and `:missing` stay with the matcher, as does a value
 * under three characters, which no trigram list holds.
 */
function stringCondition(param: IndexedParam, filter: Filter, values: string[]): IndexedFilter | undefined {
  const substring = [Operator.EQUALS, Operator.CONTAINS, Operator.EXACT] as string[];
  if (!substring.includes(filter.operator) || !values.length) return undefined;
  const texts = values.map((v) => v.toLowerCase());
  if (texts.some((text) => [...text].length < TRIGRAM)) return undefined;
  const phrases = texts.map((text) => `"${text.replaceAll('"', '""')}"`).join(' OR ');
  return {
    table: 'str',
    key: param.key,
    // Row by row (a candidate's check): a seek in the trigram lists. As `x.rowid IN (SELECT ...)` the full-text query
    // ran again for each candidate (150 ms a page over 50k Patients).
    where: 'EXISTS (SELECT 1 FROM str_text t WHERE str_text MATCH ? AND t.rowid = x.rowid)',
    params: [phrases],
    match: phrases,
  };
}

const YEAR_ZERO = Date.parse('0000-01-01T00:00:00.000Z');

/**
 * The instant `spanMs` before another: where a row whose `hi` reaches `instant` starts at the earliest. Undefined when
 * no such bound helps (an open-ended value spans from year 0 to 9999).
 */
function earlierBy(instant: string, spanMs: number): string | undefined {
  const ms = Date.parse(instant) - spanMs;
  return ms >= YEAR_ZERO ? new Date(ms).toISOString() : undefined;
}

/** match.ts's one-bound date comparisons (eq and ap, two bounds, are built in indexCondition). */
const DATE_CONDITIONS: Partial<
  Record<string, { sql: string; bound: 'start' | 'end'; loWithin: (bound: string, spanMs: number) => LoBounds }>
> = {};
DATE_CONDITIONS[Operator.LESS_THAN] = { sql: 'x.lo < ?', bound: 'start', loWithin: (b) => ({ max: b }) };
DATE_CONDITIONS[Operator.GREATER_THAN] = {
  sql: 'x.hi > ?',
  bound: 'end',
  loWithin: (b, spanMs) => ({ min: earlierBy(b, spanMs) }),
};
DATE_CONDITIONS[Operator.LESS_THAN_OR_EQUALS] = { sql: 'x.lo <= ?', bound: 'end', loWithin: (b) => ({ max: b }) };
DATE_CONDITIONS[Operator.GREATER_THAN_OR_EQUALS] = {
  sql: 'x.hi >= ?',
  bound: 'start',
  loWithin: (b, spanMs) => ({ min: earlierBy(b, spanMs) }),
};
DATE_CONDITIONS[Operator.STARTS_AFTER] = { sql: 'x.lo > ?', bound: 'end', loWithin: (b) => ({ min: b }) };
DATE_CONDITIONS[Operator.ENDS_BEFORE] = { sql: 'x.hi < ?', bound: 'start', loWithin: (b) => ({ max: b }) };

export interface ChainedFilter {
  expression: string;
  targetType: string;
  chained: SearchRequest;
}

/** MemoryRepository's forward chains (`subject:Patient.name=...`), resolved the same way. */
export function parseChainedFilter(resourceType: string, filter: Filter): ChainedFilter | undefined {
  const dotIndex = filter.code.indexOf('.');
  if (dotIndex < 0 || filter.code.startsWith('_has:')) return undefined;
  if (filter.operator !== Operator.EQUALS)
    throw new Error('MemoryRepository does not support this chained filter yet.');
  const left = filter.code.slice(0, dotIndex);
  const chainedKey = filter.code.slice(dotIndex + 1);
  const colonIndex = left.indexOf(':');
  const refCode = colonIndex < 0 ? left : left.slice(0, colonIndex);
  const searchParam = globalSchema.types[resourceType]?.searchParams?.[refCode];
  if (colonIndex === -1 && searchParam?.target?.length !== 1) {
    throw new OperationOutcomeError(
      badRequest(`Unable to identify next resource type for search parameter: ${resourceType}?${refCode}`),
    );
  }
  const targetType = colonIndex < 0 ? searchParam?.target?.[0] : left.slice(colonIndex + 1);
  if (!searchParam?.expression || !targetType) return undefined;
  return {
    expression: searchParam.expression,
    targetType,
    chained: parseSearchRequest(targetType, { [chainedKey]: filter.value }),
  };
}
