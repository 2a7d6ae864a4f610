import type { CommunicationRequest, Procedure, Task } from '@medplum/fhirtypes';
import { SERVICE_CODE_SYSTEM } from '@kc/protocols';
import { OverdueSweep } from '../apps/worker/src/maintenance/overdue-sweep';
import { ProcedurePoller } from '../apps/worker/src/maintenance/procedure-poller';
import { ReminderSweep } from '../apps/worker/src/reminders/reminder-sweep';
import { startTestService, type TestService } from './support/test-service';

const STATE = 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans';

/**
 * Medplum's server answers 400 to an `_offset` past its maxSearchOffset (10,000 by default), as the embedded store
 * does. The service's full reads sort by `_lastUpdated`, which both page by cursor to any depth. Here the store's
 * limit is lowered to 100 so that a few hundred Tasks reach past it.
 */
describe("full reads past the FHIR server's _offset limit", () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService({ fhirSandboxMaxSearchOffset: 100 });
  });
  afterAll(() => service.stop());

  it('the overdue sweep reads all 450 open Tasks in pages of 200 and marks every late one', async () => {
    const tasks = Array.from({ length: 450 }, (_, i): Task => ({
      resourceType: 'Task',
      status: 'draft',
      intent: 'plan',
      for: { reference: `Patient/offset-${i % 9}` },
      businessStatus: { coding: [{ system: STATE, code: 'awaiting-approval' }] },
      // Every 10th window ended in the past.
      restriction: {
        period:
          i % 10 === 0
            ? { start: '2020-01-01T00:00:00Z', end: '2020-01-08T00:00:00Z' }
            : { start: '2099-01-01T00:00:00Z', end: '2099-01-08T00:00:00Z' },
      },
    }));
    await service.fhir.transaction(tasks.map((resource) => ({ resource, request: { method: 'POST', url: 'Task' } })));
    // By offset the third page (offset 400) is refused: the sweep would fail and mark nothing.
    await expect(service.fhir.search('Task', { status: 'draft', _count: 200, _offset: 400 })).rejects.toThrow(
      /offset exceeds maximum/,
    );

    await service.app.get(OverdueSweep).sweep();

    const all = await service.fhir.searchAll<Task>('Task', { _sort: '_lastUpdated', _count: 200 });
    const marked = all.filter((t) => t.businessStatus?.coding?.[0].code === 'overdue');
    expect(all).toHaveLength(450);
    expect(marked).toHaveLength(45);
    for (const task of marked) expect(task.restriction?.period?.end).toBe('2020-01-08T00:00:00Z');
  });

  it('the reconciliation reads all 250 completed Procedures of its window in pages of 100', async () => {
    const procedures = Array.from({ length: 250 }, (_, i): Procedure => ({
      resourceType: 'Procedure',
      status: 'completed',
      subject: { reference: `Patient/offset-${i % 9}` },
      code: { text: 'not an infusion this service follows up' },
    }));
    await service.fhir.transaction(
      procedures.map((resource) => ({ resource, request: { method: 'POST', url: 'Procedure' } })),
    );
    expect(await service.app.get(ProcedurePoller).reconcile()).toEqual({ checked: 250 });
  });

  it('the reminder sweep reads all 250 reminders due within its horizon in pages of 200', async () => {
    const in30Minutes = new Date(Date.now() + 30 * 60_000).toISOString();
    const reminders = Array.from({ length: 250 }, (_, i): CommunicationRequest => ({
      resourceType: 'CommunicationRequest',
      status: 'active',
      category: [{ coding: [{ system: SERVICE_CODE_SYSTEM, code: 'reminder-fasting' }] }],
      subject: { reference: `Patient/offset-${i % 9}` },
      occurrenceDateTime: in30Minutes,
    }));
    await service.fhir.transaction(
      reminders.map((resource) => ({ resource, request: { method: 'POST', url: 'CommunicationRequest' } })),
    );
    expect(await service.app.get(ReminderSweep).sweep()).toEqual({ queued: 250 });
  });
});
