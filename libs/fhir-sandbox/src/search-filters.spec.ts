import { Operator } from '@medplum/core';
import { indexFhirDefinitions } from '@kc/fhir-definitions';
import { indexCondition } from './search-filters';
import { indexRowsOf, searchParamsOf } from './search-index';

beforeAll(() => indexFhirDefinitions());

const param = (type: string, code: string) => searchParamsOf(type).find((p) => p.code === code)!;

describe('search-index: what a resource is indexed by', () => {
  it('takes token values lowercased, as the matcher compares them, under the parameter key', () => {
    const rows = indexRowsOf(
      {
        resourceType: 'Task',
        status: 'draft',
        intent: 'plan',
        identifier: [{ system: 'https://X/keys', value: 'K1' }],
      },
      [param('Task', 'identifier'), param('Task', 'status')],
    );
    expect(rows.tokens).toEqual([
      ['Task:identifier', { system: 'https://x/keys', value: 'k1' }],
      ['Task:status', { system: null, value: 'draft' }],
    ]);
  });

  it('keeps the bare id of a single-target reference, and none for a reference with several targets', () => {
    const rows = indexRowsOf(
      {
        resourceType: 'Task',
        status: 'draft',
        intent: 'plan',
        for: { reference: 'Patient/p1' },
        basedOn: [{ reference: 'CarePlan/c1' }],
      },
      [param('Task', 'patient'), param('Task', 'based-on')],
    );
    expect(rows.refs).toEqual([
      ['Task:patient', 'Patient/p1', 'p1'],
      ['Task:based-on', 'CarePlan/c1', null],
    ]);
  });

  it("takes a string or uri parameter's values as the matcher reads them (a name formatted whole), lowercased", () => {
    const patient = { resourceType: 'Patient' as const, name: [{ given: ['Zoë'], family: "O'Brien" }] };
    expect(indexRowsOf(patient, [param('Patient', 'name'), param('Patient', 'family')]).strings).toEqual([
      ['Patient:name', "zoë o'brien"],
      ['Patient:family', "o'brien"],
    ]);
    const plan = { resourceType: 'PlanDefinition' as const, status: 'active' as const, url: 'https://X.org/P' };
    expect(indexRowsOf(plan, [param('PlanDefinition', 'url')]).strings).toEqual([
      ['PlanDefinition:url', 'https://x.org/p'],
    ]);
  });

  it('gives a date its [start, end] bounds', () => {
    const rows = indexRowsOf({ resourceType: 'Task', status: 'draft', intent: 'plan', authoredOn: '2027-01-04' }, [
      param('Task', 'authored-on'),
    ]);
    expect(rows.dates).toEqual([['Task:authored-on', '2027-01-04T00:00:00.000Z', '2027-01-04T23:59:59.999Z']]);
  });
});

describe('search-filters: a filter as SQL over the index', () => {
  it('looks several token values up by value first (IN), each with its system', () => {
    const condition = indexCondition(param('Task', 'identifier'), {
      code: 'identifier',
      operator: Operator.EQUALS,
      value: 'https://x/keys|K1,https://x/keys|K2',
    });
    expect(condition).toEqual({
      table: 'token',
      key: 'Task:identifier',
      where: 'x.value IN (?, ?) AND ((x.value = ? AND +x.system = ?) OR (x.value = ? AND +x.system = ?))',
      params: ['k1', 'k2', 'k1', 'https://x/keys', 'k2', 'https://x/keys'],
    });
  });

  it('leaves to the matcher what the index cannot answer exactly (a token :not, an empty reference)', () => {
    expect(
      indexCondition(param('Task', 'status'), { code: 'status', operator: Operator.NOT, value: 'draft' }),
    ).toBeUndefined();
    expect(indexCondition(param('Task', 'patient'), { code: 'patient', operator: Operator.EQUALS, value: '' })).toBe(
      undefined,
    );
  });

  it('answers a date equality as an overlap of the two ranges', () => {
    const { loWithin, ...condition } = indexCondition(param('Task', 'authored-on'), {
      code: 'authored-on',
      operator: Operator.EQUALS,
      value: '2027-01-04',
    })!;
    expect(condition).toEqual({
      table: 'date',
      key: 'Task:authored-on',
      where: '(x.lo < ? AND x.hi > ?)',
      params: ['2027-01-04T23:59:59.999Z', '2027-01-04T00:00:00.000Z'],
    });
    expect(loWithin).toBeInstanceOf(Function);
  });

  it("bounds the rows' lo by the operator and the parameter's widest value, and gives no bounds for several values", () => {
    const bounds = (operator: Operator, value: string, spanMs = 1000) =>
      indexCondition(param('Task', 'authored-on'), { code: 'authored-on', operator, value })?.loWithin?.(spanMs);
    // Where a row must start to overlap the day: from the widest span before it to its end.
    expect(bounds(Operator.EQUALS, '2027-01-04')).toEqual({
      min: '2027-01-03T23:59:59.000Z',
      max: '2027-01-04T23:59:59.999Z',
    });
    expect(bounds(Operator.EQUALS, '2027-01-04', 86_400_000)).toEqual({
      min: '2027-01-03T00:00:00.000Z',
      max: '2027-01-04T23:59:59.999Z',
    });
    expect(bounds(Operator.GREATER_THAN, '2027-01-04T10:00:00Z')).toEqual({ min: '2027-01-04T09:59:59.999Z' });
    expect(bounds(Operator.GREATER_THAN_OR_EQUALS, '2027-01-04T10:00:00Z')).toEqual({
      min: '2027-01-04T09:59:59.000Z',
    });
    expect(bounds(Operator.GREATER_THAN_OR_EQUALS, '2027-01-04', 7 * 86_400_000)).toEqual({
      min: '2026-12-28T00:00:00.000Z',
    });
    // Upper bounds and `sa` hold whatever the span.
    expect(bounds(Operator.STARTS_AFTER, '2027-01-04T10:00:00Z', Infinity)).toEqual({
      min: '2027-01-04T10:00:00.999Z',
    });
    expect(bounds(Operator.LESS_THAN, '2027-01-04T10:00:00Z', Infinity)).toEqual({ max: '2027-01-04T10:00:00.000Z' });
    expect(bounds(Operator.LESS_THAN_OR_EQUALS, '2027-01-04T10:00:00Z', Infinity)).toEqual({
      max: '2027-01-04T10:00:00.999Z',
    });
    expect(bounds(Operator.ENDS_BEFORE, '2027-01-04T10:00:00Z', Infinity)).toEqual({ max: '2027-01-04T10:00:00.000Z' });
    // A parameter with open-ended values (no span bound) gets no lower bound.
    expect(bounds(Operator.GREATER_THAN_OR_EQUALS, '2027-01-04', Infinity)).toEqual({ min: undefined });
    expect(bounds(Operator.EQUALS, '2027-01-04', Infinity)).toEqual({
      min: undefined,
      max: '2027-01-04T23:59:59.999Z',
    });
    expect(
      indexCondition(param('Task', 'authored-on'), {
        code: 'authored-on',
        operator: Operator.GREATER_THAN,
        value: '2027-01-04T10:00:00Z,2027-02-01T10:00:00Z',
      })?.loWithin,
    ).toBeUndefined();
  });
});

describe('search-filters: a string filter as a trigram phrase', () => {
  const name = (operator: Operator, value: string) =>
    indexCondition(param('Patient', 'name'), { code: 'name', operator, value });

  it("is an FTS5 phrase per value (quotes doubled), OR'd", () => {
    expect(name(Operator.EQUALS, 'Say "Cheese",ANNA')).toEqual({
      table: 'str',
      key: 'Patient:name',
      where: 'EXISTS (SELECT 1 FROM str_text t WHERE str_text MATCH ? AND t.rowid = x.rowid)',
      params: ['"say ""cheese""" OR "anna"'],
      match: '"say ""cheese""" OR "anna"',
    });
    expect(name(Operator.CONTAINS, 'enn')?.params).toEqual(['"enn"']);
    expect(name(Operator.EXACT, 'Benn')?.params).toEqual(['"benn"']);
  });

  it('leaves to the matcher what trigrams cannot narrow: a value under three characters, a negation, :missing', () => {
    expect(name(Operator.EQUALS, 'be')).toBeUndefined();
    expect(name(Operator.EQUALS, 'anna,be')).toBeUndefined();
    expect(name(Operator.EQUALS, 'zö')).toBeUndefined();
    expect(name(Operator.NOT, 'smith')).toBeUndefined();
    expect(name(Operator.MISSING, 'true')).toBeUndefined();
  });
});
