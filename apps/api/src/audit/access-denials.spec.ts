import type { AuditEvent } from '@medplum/fhirtypes';
import type { AuthenticatedRequest } from '@kc/auth';
import { AccessDenials } from './access-denials';
import type { AuditTrail } from './audit-trail';

describe('AccessDenials', () => {
  function denials() {
    const recorded: AuditEvent[] = [];
    let throttled = 0;
    const trail = { record: (e: AuditEvent) => recorded.push(e), countThrottled: () => throttled++ };
    return { denials: new AccessDenials(trail as unknown as AuditTrail), recorded, throttled: () => throttled };
  }
  const request = (ip: string, caller?: AuthenticatedRequest['caller']) =>
    ({ method: 'GET', originalUrl: '/patients/p1/timeline', ip, caller }) as AuthenticatedRequest;

  afterEach(() => jest.useRealTimers());

  it('records refusals of who asked (401, 403), nothing else', () => {
    const { denials: d, recorded } = denials();
    d.record(request('10.0.0.1'), 401);
    d.record(request('10.0.0.1', { id: 'ehr-1', roles: ['integration'] }), 403);
    d.record(request('10.0.0.1'), 400);
    d.record(request('10.0.0.1'), 404);
    expect(recorded.map((e) => [e.outcomeDesc, e.agent[0].altId])).toEqual([
      ['HTTP 401', undefined],
      ['HTTP 403', 'ehr-1'],
    ]);
  });

  it('a scanner without a token: 20 refusals a minute per address are recorded, the rest counted; 403s all', () => {
    jest.useFakeTimers({ now: new Date('2027-01-04T10:00:05Z') });
    const { denials: d, recorded, throttled } = denials();
    for (let i = 0; i < 25; i++) d.record(request('203.0.113.9'), 401);
    for (let i = 0; i < 3; i++) d.record(request('198.51.100.2'), 401);
    for (let i = 0; i < 25; i++) d.record(request('203.0.113.9', { id: 'c', roles: ['clinician'] }), 403);
    expect(recorded).toHaveLength(20 + 3 + 25);
    expect(throttled()).toBe(5);
    // The next minute, a new budget.
    jest.setSystemTime(new Date('2027-01-04T10:01:00Z'));
    d.record(request('203.0.113.9'), 401);
    expect(recorded).toHaveLength(49);
  });
});
