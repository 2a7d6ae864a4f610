import { Logger } from '@nestjs/common';
import type { Bundle, Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { SERVICE_CODE_SYSTEM, TASK_KEY_SYSTEM } from '@kc/protocols';
import { outcome, startFakeServer, type FakeServer } from '../../../../test/support/fake-fhir-servers';
import { OverdueSweep } from './overdue-sweep';

const closedWindow = { period: { start: '2027-01-01T00:00:00Z', end: '2027-01-08T00:00:00Z' } };
const ours = (id: string, versionId: string): Task => ({
  resourceType: 'Task',
  id,
  meta: { versionId },
  status: 'draft',
  intent: 'plan',
  identifier: [{ system: TASK_KEY_SYSTEM, value: `cp:proc:${id}` }],
  businessStatus: { coding: [{ system: SERVICE_CODE_SYSTEM, code: 'awaiting-approval' }] },
  restriction: closedWindow,
});
const someoneElses: Task = {
  resourceType: 'Task',
  id: 'lab-order',
  meta: { versionId: '1' },
  status: 'requested',
  intent: 'order',
  restriction: closedWindow,
};

describe('overdue sweep against a Medplum-shaped server', () => {
  let server: FakeServer;
  beforeAll(() => {
    Logger.overrideLogger(false);
  });
  afterEach(() => server.close());

  it('writes with If-Match, skips a Task a clinician changed meanwhile (412), and leaves other applications\u2019 Tasks alone', async () => {
    server = await startFakeServer((req) => {
      if (req.method === 'GET') {
        const bundle: Bundle<Task> = {
          resourceType: 'Bundle',
          type: 'searchset',
          entry: [ours('t1', '3'), ours('t2', '5'), someoneElses].map((resource) => ({ resource })),
        };
        return { status: 200, body: bundle };
      }
      if (req.url.endsWith('/Task/t2')) return { status: 412, body: outcome('conflict', 'Version mismatch') };
      return { status: 200, headers: { etag: 'W/"4"' }, body: JSON.parse(req.body) };
    });
    const sweep = new OverdueSweep(new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 }));
    expect(await sweep.sweep(new Date('2027-02-01T00:00:00Z'))).toEqual({ marked: 1, checked: 3 });
    const writes = server.requests.filter((r) => r.method === 'PUT');
    expect(writes.map((w) => [w.url, w.headers['if-match']])).toEqual([
      ['/fhir/Task/t1', 'W/"3"'],
      ['/fhir/Task/t2', 'W/"5"'],
    ]);
    const written = JSON.parse(writes[0].body) as Task;
    expect(written.status).toBe('draft');
    expect(written.businessStatus?.coding?.[0].code).toBe('overdue');
    expect(server.requests[0].url).toContain('status=draft%2Cready');
  });
});
