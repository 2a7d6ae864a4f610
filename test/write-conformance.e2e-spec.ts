import request from 'supertest';
import type { Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { WriteConformanceCheck } from '@kc/nest-core';
import { enrolPatient } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

/**
 * FHIR_WRITE_CONFORMANCE (docs/guide/profiles.md): what the service writes is checked against fhir-profiles/ once the
 * FHIR server has taken it. Every test service runs with it on; here, what an operator sees when a write departs.
 */
describe('every write checked against fhir-profiles/', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  it('a Task of the service’s written awaiting approval but ready: logged and counted, the write standing', async () => {
    const { carePlanId } = await enrolPatient(service, 'ketamine-low-dose-series');
    const [task] = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}`, _count: 1 });
    expect(task.status).toBe('draft');

    // Written through the service's own FHIR client, as a bug in it would write it.
    const written = await service.app.get(FhirClient).update<Task>({ ...task, status: 'ready' });
    expect(written.status).toBe('ready');

    const check = service.app.get(WriteConformanceCheck);
    expect(check.found).toEqual([
      {
        reference: `Task/${task.id}`,
        problems: [
          {
            profile: 'https://ketamine-careplans.example/fhir/StructureDefinition/planned-task',
            expression: 'Task',
            message: 'Constraint kc-task-3 not met: Awaiting approval is a draft: nothing an EHR acts on',
          },
        ],
      },
    ]);
    const metrics = (await request(service.url).get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/kc_nonconforming_writes_total\{resource_type="Task"\} 1\b/);
    // Seen: the test service's stop would fail on it otherwise.
    check.found.length = 0;
  });

  it('the same write is not checked with the setting off', async () => {
    const off = await startTestService({ fhirWriteConformance: 0 });
    try {
      const { carePlanId } = await enrolPatient(off, 'ketamine-low-dose-series');
      const [task] = await off.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}`, _count: 1 });
      await off.app.get(FhirClient).update<Task>({ ...task, status: 'ready' });
      expect(off.app.get(WriteConformanceCheck).found).toEqual([]);
      expect((await request(off.url).get('/metrics').expect(200)).text).not.toMatch(/kc_nonconforming_writes_total/);
    } finally {
      await off.stop();
    }
  });
});
