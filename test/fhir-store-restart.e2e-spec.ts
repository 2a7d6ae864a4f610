import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import type { Queue } from 'bullmq';
import { getQueueToken } from '@nestjs/bullmq';
import { QUEUES } from '@kc/queue';
import type { Bundle, CarePlan, Provenance, Resource, Task } from '@medplum/fhirtypes';
import { completeInfusion, enrolPatient, followUpTasks, waitFor } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

/**
 * The embedded FHIR store is durable: the whole service, stopped and started again on the same data
 * directory (FHIR_DATA_DIR), finds every CarePlan, Task and Provenance it wrote before, with their versions,
 * and its searches (by key, by plan, by infusion) still answer from the index.
 */
describe('embedded FHIR store: data survives a restart', () => {
  let dataDir: string;
  let service: TestService | undefined;
  beforeAll(() => (dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-restart-'))));
  afterAll(async () => {
    await service?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const snapshot = async (s: TestService) => {
    const byId = (resources: Resource[]) =>
      Object.fromEntries(resources.map((r) => [r.id, r.meta?.versionId])) as Record<string, string>;
    return {
      carePlans: byId(await s.fhir.searchAll<CarePlan>('CarePlan', { _count: 100 })),
      tasks: byId(await s.fhir.searchAll<Task>('Task', { _count: 100 })),
      provenance: byId(await s.fhir.searchAll<Provenance>('Provenance', { _count: 100 })),
    };
  };

  it('stop, start on the same data directory: every CarePlan, Task and Provenance is still there', async () => {
    service = await startTestService({ fhirDataDir: dataDir });
    expect(service.config.fhirDataDir).toBe(dataDir);
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await request(service.url)
      .post('/events/infusion-completed')
      .set(service.as('integration'))
      .send({ procedure: `Procedure/${procedureId}` })
      .expect(202);
    const [check] = await waitFor(async () => {
      const found = await followUpTasks(service!, procedureId);
      return found.length === 2 && found;
    }, 'two follow-up tasks');
    const approved = await request(service.url)
      .post(`/tasks/${check.id}/$approve`)
      .set(service.as('clinician'))
      .set('If-Match', `W/"${check.meta!.versionId}"`)
      .send({})
      .expect(200);
    const before = await snapshot(service);
    expect(Object.keys(before.carePlans)).toContain(enrolment.carePlanId);
    expect(Object.keys(before.tasks).length).toBeGreaterThanOrEqual(2);
    // The approval's, and since session 60 the infusion's (what it answered: the session it gave).
    const provenances = await service.fhir.searchAll<Provenance>('Provenance', { _count: 100 });
    expect(provenances.map((p) => p.activity?.text).sort()).toEqual(['answer what an infusion gave', 'approve']);
    const fhirUrlBefore = service.config.fhirBaseUrl;
    const followUpIds = (await followUpTasks(service, procedureId)).map((t) => t.id).sort();

    await service.stop();
    service = undefined;
    // Nothing left in memory: a new service, new ports, the same directory.
    service = await startTestService({ fhirDataDir: dataDir });
    expect(service.config.fhirBaseUrl).not.toBe(fhirUrlBefore);

    expect(await snapshot(service)).toEqual(before);
    // Versions and history too: the approved Task has its generated version and the approval.
    const task = await service.fhir.read<Task>('Task', check.id!);
    expect(task.meta?.versionId).toBe(approved.body.meta.versionId);
    expect(task.businessStatus?.coding?.[0].code).toBe('approved');
    const history = await fetch(`${service.config.fhirBaseUrl}/Task/${check.id}/_history`).then(
      (r) => r.json() as Promise<Bundle>,
    );
    expect(history.entry?.map((e) => e.resource?.meta?.versionId)).toEqual([
      approved.body.meta.versionId,
      check.meta!.versionId,
    ]);
    // The index came back with the data: searches by infusion, by plan and by Provenance target still answer.
    expect((await followUpTasks(service, procedureId)).map((t) => t.id).sort()).toEqual(followUpIds);
    const planTasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    expect(planTasks.length).toBe(Object.keys(before.tasks).length);
    const provenance = await service.fhir.searchAll<Provenance>('Provenance', {
      target: `Task/${check.id}`,
    });
    expect(provenance).toHaveLength(1);

    // And the restarted service keeps working on the old data: the same event again is idempotent.
    await request(service.url)
      .post('/events/infusion-completed')
      .set(service.as('integration'))
      .send({ procedure: `Procedure/${procedureId}` })
      .expect(202);
    const queue = service.app.get<Queue>(getQueueToken(QUEUES.followups));
    await waitFor(async () => (await queue.getJobCounts('completed')).completed === 1, 'the repeated event processed');
    expect((await followUpTasks(service, procedureId)).map((t) => t.id).sort()).toEqual(followUpIds);
  });
});
