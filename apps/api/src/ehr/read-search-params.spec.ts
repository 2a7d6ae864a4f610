import type { OutcomeException } from '@kc/common';
import { READABLE_TYPES, readableType, readSearchParams } from './read-search-params';

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    const outcome = err as OutcomeException;
    expect(outcome.getStatus()).toBe(400);
    return (outcome.getResponse() as { issue: { details: { text: string } }[] }).issue[0].details.text;
  }
  throw new Error('expected a 400');
}

describe('readableType', () => {
  it('accepts the served types only', () => {
    for (const type of Object.keys(READABLE_TYPES)) expect(readableType(type)).toBe(type);
    expect(refusal(() => readableType('Patient'))).toMatch(/Patient is not one of them/);
    expect(refusal(() => readableType('task'))).toMatch(/not one of them/);
    expect(refusal(() => readableType('X'.repeat(500)))).toHaveLength(
      refusal(() => readableType('X'.repeat(41))).length,
    );
  });
});

describe('readSearchParams', () => {
  it('passes allowed parameters and paging, with _count 20 by default', () => {
    expect(readSearchParams('Task', { patient: 'Patient/1', status: 'requested,accepted' })).toEqual({
      patient: 'Patient/1',
      status: 'requested,accepted',
      _count: '20',
    });
    expect(readSearchParams('CarePlan', { subject: '1', _getpages: 'abc', _count: '0' })).toEqual({
      subject: '1',
      _getpages: 'abc',
      _count: '0',
    });
    expect(readSearchParams('Task', { 'identifier:missing': 'true' })).toMatchObject({ 'identifier:missing': 'true' });
  });

  it('refuses parameters the type does not allow, or malformed names', () => {
    expect(refusal(() => readSearchParams('Task', { _include: 'Task:patient' }))).toMatch(/not supported for Task/);
    expect(refusal(() => readSearchParams('CarePlan', { owner: 'Practitioner/1' }))).toMatch(/not supported/);
    expect(refusal(() => readSearchParams('Task', { 'status:not:x': 'a' }))).toMatch(/not supported/);
    expect(refusal(() => readSearchParams('Task', { 'status:': 'a' }))).toMatch(/not supported/);
  });

  it('refuses repeated, non-string and smuggling values', () => {
    expect(refusal(() => readSearchParams('Task', { status: ['a', 'b'] }))).toMatch(/must appear once/);
    expect(refusal(() => readSearchParams('Task', { status: { a: 1 } }))).toMatch(/must appear once/);
    for (const value of ['a&_include=*', 'a b', '', '../x', 'x'.repeat(513), 'a#b', 'a\nb'])
      expect(refusal(() => readSearchParams('Task', { code: value }))).toMatch(/unsupported value/);
  });

  it("a cursor may name the dozens of ids a transaction's resources share an instant with, and nothing else", () => {
    // 45 Tasks written in one transaction share a millisecond on a fast machine: their sync's cursor names them.
    const ids = Array.from({ length: 45 }, (_, i) => `01a2${String(i).padStart(4, '0')}-66e9-7290-9772-41c11cd61657`);
    const cursor = `2-1799360520000-${ids.join(',')}`;
    expect(cursor.length).toBeGreaterThan(512);
    expect(readSearchParams('Task', { _cursor: cursor })._cursor).toBe(cursor);
    for (const value of ['2-1-a&_include=*', '2-1-a b', '2-1-a/../b', 'x'.repeat(16_001)])
      expect(refusal(() => readSearchParams('Task', { _cursor: value }))).toMatch(/unsupported value/);
  });

  it('reference parameters take Type/id or an id only', () => {
    expect(readSearchParams('Task', { 'based-on': 'CarePlan/abc' })['based-on']).toBe('CarePlan/abc');
    for (const value of ['Patient/1/_history/2', 'patient/1', 'http://x/Patient/1', 'Patient/', 'a|b'])
      expect(refusal(() => readSearchParams('Task', { patient: value }))).toMatch(/must be a reference/);
  });

  it('_total asks the server to count every match: accurate, estimate or none', () => {
    expect(readSearchParams('Task', { status: 'requested', _total: 'accurate' })._total).toBe('accurate');
    for (const total of ['all', 'ACCURATE', '1'])
      expect(refusal(() => readSearchParams('Task', { _total: total }))).toMatch(/_total must be/);
  });

  it('_count must be an integer from 0 to 100', () => {
    expect(readSearchParams('Task', { _count: '100' })._count).toBe('100');
    for (const count of ['101', '-1', '1.5', 'ten'])
      expect(refusal(() => readSearchParams('Task', { _count: count }))).toMatch(/_count/);
  });
});
