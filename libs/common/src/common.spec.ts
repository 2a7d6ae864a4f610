import { bearerToken } from './bearer-token';
import { instanceCapabilityStatement } from './capability-statement';
import { isResourceId, RESOURCE_ID, RESOURCE_ID_PATTERN } from './fhir-ids';
import { nestedDeeperThan, parseBoundedJson } from './json-depth';
import { badRequest, conflict, operationOutcome, OutcomeException } from './operation-outcome';

describe('FHIR resource ids', () => {
  it('accepts 1-64 letters, digits, - and .', () => {
    for (const id of ['1', 'abc-DEF.9', 'a'.repeat(64), '0193c2f4-7d3e-7a4b-9c1d-2e3f4a5b6c7d']) {
      expect(isResourceId(id)).toBe(true);
      expect(RESOURCE_ID.test(id)).toBe(true);
    }
  });

  it('refuses empty, too long, other characters and non-strings', () => {
    for (const id of ['', 'a'.repeat(65), 'a/b', 'a b', 'a_b', 'x?y=1', '../etc', 'é', 'a\n']) {
      expect(isResourceId(id)).toBe(false);
    }
    for (const value of [undefined, null, 12, {}, ['1']]) expect(isResourceId(value)).toBe(false);
  });

  it('composes into larger patterns', () => {
    const reference = new RegExp(`^Procedure/${RESOURCE_ID_PATTERN}$`);
    expect(reference.test('Procedure/123')).toBe(true);
    expect(reference.test('Procedure/')).toBe(false);
    expect(reference.test('Procedure/1/_history/2')).toBe(false);
  });
});

describe('bearerToken', () => {
  it('takes the token of a Bearer header, trimmed', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerToken('Bearer   abc  ')).toBe('abc');
  });

  it('is undefined for no header, another scheme, a wrong case or no token', () => {
    for (const header of [undefined, '', 'Basic dXNlcjpwYXNz', 'bearer abc', 'Bearer', 'Bearer    ', 'Bearerabc'])
      expect(bearerToken(header)).toBeUndefined();
  });
});

describe('instanceCapabilityStatement', () => {
  it('wraps what a server offers in the shared R4 header', () => {
    const statement = instanceCapabilityStatement({
      baseUrl: 'http://x/fhir',
      format: ['application/fhir+json'],
      software: { name: 'test' },
      description: 'a test server',
      rest: [{ mode: 'server' }],
    });
    expect(statement).toMatchObject({
      resourceType: 'CapabilityStatement',
      status: 'active',
      kind: 'instance',
      fhirVersion: '4.0.1',
      format: ['application/fhir+json'],
      software: { name: 'test' },
      implementation: { description: 'a test server', url: 'http://x/fhir' },
      rest: [{ mode: 'server' }],
    });
  });
});

describe('OperationOutcome helpers', () => {
  it('builds one issue, with an expression only when given', () => {
    expect(operationOutcome('error', 'invalid', 'bad')).toEqual({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'invalid', details: { text: 'bad' } }],
    });
    expect(operationOutcome('warning', 'invalid', 'bad', ['Task.for']).issue[0].expression).toEqual(['Task.for']);
  });

  it('maps to HTTP statuses', () => {
    expect(badRequest('x').getStatus()).toBe(400);
    expect(conflict('x').getStatus()).toBe(409);
    expect(conflict('x', 412).getStatus()).toBe(412);
    const error = new OutcomeException(401, 'login', 'who are you');
    expect(error.getResponse()).toMatchObject({ issue: [{ code: 'login', details: { text: 'who are you' } }] });
  });
});

describe('JSON nesting bounds (request bodies)', () => {
  it('measures nesting without recursion and parses only bounded JSON', () => {
    expect(nestedDeeperThan({ a: [{ b: 1 }] }, 3)).toBe(false);
    expect(nestedDeeperThan({ a: [{ b: {} }] }, 3)).toBe(true);
    expect(nestedDeeperThan(JSON.parse('['.repeat(5000) + ']'.repeat(5000)))).toBe(true);
    expect(nestedDeeperThan('plain')).toBe(false);
    expect(parseBoundedJson('{"resourceType":"Procedure"}')).toEqual({ value: { resourceType: 'Procedure' } });
    expect(parseBoundedJson('{nope')).toEqual({ error: 'Request body is not valid JSON' });
    expect(parseBoundedJson('[[[1]]]', 2)).toEqual({ error: 'Request body nests deeper than 2 levels' });
  });
});
