import { UNASSIGNED } from '@kc/worklist-index';
import type { OutcomeException } from '@kc/common';
import { parseWorklistQuery } from './worklist-query';

// Filters only: the paging parameters (count, page) are being replaced by a cursor and are tested end to end.

function refusal(query: Record<string, unknown>, kinds: string[] = []): string {
  try {
    parseWorklistQuery(query, kinds);
  } catch (err) {
    const outcome = err as OutcomeException;
    expect(outcome.getStatus()).toBe(400);
    return (outcome.getResponse() as { issue: { details: { text: string } }[] }).issue[0].details.text;
  }
  throw new Error('expected a 400');
}

describe('parseWorklistQuery: filters', () => {
  it('takes a patient as an id or a Patient reference', () => {
    expect(parseWorklistQuery({ patient: '123' }).patient).toBe('123');
    expect(parseWorklistQuery({ patient: 'Patient/a-b.c' }).patient).toBe('a-b.c');
    expect(parseWorklistQuery({}).patient).toBeUndefined();
  });

  it('refuses other references and malformed ids', () => {
    for (const patient of ['', 'Practitioner/1', 'Patient/', 'Patient/1/_history/1', 'a b', 'x'.repeat(65)])
      expect(refusal({ patient })).toBe('patient must be a Patient id or reference');
  });

  it('takes a protocol id or canonical, refuses anything else', () => {
    const canonical = 'https://ketamine-careplans.example/fhir/PlanDefinition/ketamine-low-dose-series|1.0.0';
    expect(parseWorklistQuery({ protocol: canonical }).protocol).toBe(canonical);
    for (const protocol of ['', 'a b', 'a&b=c', 'x'.repeat(257)])
      expect(refusal({ protocol })).toBe('protocol must be a protocol id or canonical URL');
  });

  it('due-before and due-after take dates and dateTimes', () => {
    const q = parseWorklistQuery({ 'due-before': '2027-03-01', 'due-after': '2027-02-01T10:00:00Z' });
    expect(q.dueBefore?.toISOString()).toBe('2027-03-01T00:00:00.000Z');
    expect(q.dueAfter?.toISOString()).toBe('2027-02-01T10:00:00.000Z');
    for (const value of ['tomorrow', '03/01/2027', '2027-13-01', ''])
      expect(refusal({ 'due-before': value })).toBe('due-before must be a date (YYYY-MM-DD) or dateTime');
  });

  it("a date alone is that day from the clinic's midnight (CLINIC_TIME_ZONE); a dateTime stays its instant", () => {
    const q = parseWorklistQuery(
      { 'due-before': '2027-03-01', 'due-after': '2027-02-01T10:00:00Z' },
      [],
      undefined,
      'America/New_York',
    );
    expect(q.dueBefore?.toISOString()).toBe('2027-03-01T05:00:00.000Z');
    expect(q.dueAfter?.toISOString()).toBe('2027-02-01T10:00:00.000Z');
  });

  it('overdue is true or false', () => {
    expect(parseWorklistQuery({ overdue: 'true' }).overdue).toBe(true);
    expect(parseWorklistQuery({ overdue: 'false' }).overdue).toBe(false);
    expect(parseWorklistQuery({}).overdue).toBeUndefined();
    for (const overdue of ['yes', '1', 'TRUE']) expect(refusal({ overdue })).toBe('overdue must be true or false');
  });

  it('refuses unknown and repeated parameters instead of listing everything', () => {
    expect(refusal({ status: 'requested' })).toMatch(/^Unknown worklist parameter status/);
    expect(refusal({ patient: ['1', '2'] })).toBe('Parameter patient may appear once');
    expect(refusal({ overdue: { $ne: 1 } })).toBe('Parameter overdue may appear once');
  });
});

describe('parseWorklistQuery: kind', () => {
  it('takes a kind of Task the protocols generate, refuses any other', () => {
    const kinds = ['infusion-session', 'post-infusion-check'];
    expect(parseWorklistQuery({ kind: 'post-infusion-check' }, kinds).kind).toBe('post-infusion-check');
    expect(parseWorklistQuery({}, kinds).kind).toBeUndefined();
    for (const kind of ['', 'Post Infusion', 'a&b', 'reminder-fasting', 'null'])
      expect(refusal({ kind }, kinds)).toBe('kind must be one of infusion-session, post-infusion-check');
  });
});

describe('parseWorklistQuery: owner', () => {
  it('me (the caller), none (nobody has it) or a reference; anything else is refused', () => {
    expect(parseWorklistQuery({ owner: 'me' }, [], 'Practitioner/dr-1').owner).toBe('Practitioner/dr-1');
    expect(parseWorklistQuery({ owner: 'none' }).owner).toBe(UNASSIGNED);
    expect(parseWorklistQuery({ owner: 'CareTeam/night-shift' }).owner).toBe('CareTeam/night-shift');
    expect(parseWorklistQuery({}).owner).toBeUndefined();
    expect(refusal({ owner: 'me' })).toMatch(/^owner=me needs a token that names its FHIR user/);
    for (const owner of ['', 'Patient/p1', 'Practitioner/', 'dr-1', 'Practitioner/a b'])
      expect(refusal({ owner })).toBe('owner must be me, none, or a reference such as Practitioner/123');
  });
});
