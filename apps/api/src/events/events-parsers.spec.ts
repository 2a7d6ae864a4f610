import { createHmac } from 'node:crypto';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { InfusionCompletedDto } from './infusion-completed.dto';
import { clearedIssueIdsIn, procedureIdsIn } from './notified-resources';
import { safeEqual, validSignature } from './webhook-signature';

describe('webhook signature (hex HMAC-SHA256 of the raw body)', () => {
  const body = Buffer.from('{"resourceType":"Procedure","id":"1"}');
  const good = createHmac('sha256', 'secret').update(body).digest('hex');

  it('accepts the right signature, in any case and with surrounding space', () => {
    expect(validSignature(body, good, 'secret')).toBe(true);
    expect(validSignature(body, ` ${good.toUpperCase()}\n`, 'secret')).toBe(true);
  });

  it('refuses a missing, empty, truncated or foreign signature, another secret or another body', () => {
    expect(validSignature(body, undefined, 'secret')).toBe(false);
    expect(validSignature(body, '', 'secret')).toBe(false);
    expect(validSignature(body, good.slice(0, -1), 'secret')).toBe(false);
    expect(validSignature(body, 'deadbeef', 'secret')).toBe(false);
    expect(validSignature(body, `sha256=${good}`, 'secret')).toBe(false);
    expect(validSignature(body, good, 'other secret')).toBe(false);
    expect(validSignature(Buffer.from(`${body.toString()} `), good, 'secret')).toBe(false);
  });

  it('safeEqual compares strings of any length without throwing', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(safeEqual('', '')).toBe(true);
  });
});

describe('procedureIdsIn (notification bodies)', () => {
  it('takes a Procedure id, or every Procedure in a Bundle (nested too)', () => {
    expect(procedureIdsIn({ resourceType: 'Procedure', id: 'p1' })).toEqual(['p1']);
    expect(
      procedureIdsIn({
        resourceType: 'Bundle',
        type: 'history',
        entry: [
          { resource: { resourceType: 'Procedure', id: 'p1' } },
          { resource: { resourceType: 'Patient', id: 'x' } },
          {},
          { resource: { resourceType: 'Bundle', entry: [{ resource: { resourceType: 'Procedure', id: 'p2' } }] } },
        ],
      }),
    ).toEqual(['p1', 'p2']);
  });

  it('ignores what is not a Procedure, has no or a malformed id, or is not an object', () => {
    for (const body of [
      undefined,
      null,
      '',
      'Procedure/1',
      42,
      [],
      {},
      { resourceType: 'Patient', id: '1' },
      { resourceType: 'Procedure' },
      { resourceType: 'Procedure', id: '../Patient/1' },
      { resourceType: 'Procedure', id: 7 },
      { resourceType: 'Procedure', id: 'a'.repeat(65) },
      { resourceType: 'Bundle' },
      { resourceType: 'Bundle', entry: [{ resource: { resourceType: 'Procedure', id: 'a b' } }] },
    ])
      expect(procedureIdsIn(body)).toEqual([]);
  });
});

describe('InfusionCompletedDto (POST /events/infusion-completed)', () => {
  async function errors(body: unknown) {
    return (await validate(plainToInstance(InfusionCompletedDto, body as object))).map((e) => e.property);
  }

  it('accepts a Procedure reference', async () => {
    expect(await errors({ procedure: 'Procedure/123' })).toEqual([]);
    expect(await errors({ procedure: 'Procedure/a-b.c' })).toEqual([]);
  });

  it('refuses a missing, non-string or malformed reference', async () => {
    for (const procedure of [
      undefined,
      123,
      '',
      '123',
      'Patient/123',
      'Procedure/',
      'Procedure/1/_history/2',
      'Procedure/1?x=y',
      'http://fhir/Procedure/1',
      ` Procedure/1`,
    ])
      expect(await errors({ procedure })).toEqual(['procedure']);
  });
});

describe('clearedIssueIdsIn (contraindications resolved in the EHR)', () => {
  it('takes the DetectedIssues implicating a plan that are overridden or withdrawn, not those still unresolved', () => {
    const issue = (id: string, extra: object) => ({
      resourceType: 'DetectedIssue',
      id,
      status: 'final',
      implicated: [{ reference: 'CarePlan/p1' }],
      ...extra,
    });
    expect(
      clearedIssueIdsIn({
        resourceType: 'Bundle',
        entry: [
          { resource: issue('mitigated', { mitigation: [{ action: { text: 'Reviewed' } }] }) },
          { resource: issue('withdrawn', { status: 'entered-in-error' }) },
          { resource: issue('unresolved', {}) },
          { resource: issue('no-plan', { status: 'cancelled', implicated: [{ reference: 'Task/t1' }] }) },
        ],
      }),
    ).toEqual(['mitigated', 'withdrawn']);
  });
});
