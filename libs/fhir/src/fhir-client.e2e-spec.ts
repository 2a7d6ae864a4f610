import type { Bundle, Patient, Task } from '@medplum/fhirtypes';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { FhirClient } from './fhir-client';
import { FhirVersionConflictError, FhirNotFoundError } from './fhir-errors';

describe('FhirClient against the embedded sandbox over HTTP', () => {
  let sandbox: FhirSandbox;
  let fhir: FhirClient;
  beforeAll(async () => {
    sandbox = await startFhirSandbox();
    fhir = new FhirClient({ baseUrl: sandbox.baseUrl, maxAttempts: 1 });
  });
  afterAll(() => sandbox.close());

  it('creates and reads with the version from the ETag', async () => {
    const { resource, created } = await fhir.create<Patient>({ resourceType: 'Patient', name: [{ family: 'Rivera' }] });
    expect(created).toBe(true);
    const read = await fhir.read<Patient>('Patient', resource.id!);
    expect(read.meta?.versionId).toBe(resource.meta?.versionId);
  });

  it('conditional create returns the existing resource the second time', async () => {
    const task: Task = {
      resourceType: 'Task',
      status: 'requested',
      intent: 'plan',
      identifier: [{ system: 'urn:test', value: 'k-1' }],
    };
    const first = await fhir.create(task, { ifNoneExist: { identifier: 'urn:test|k-1' } });
    const second = await fhir.create(task, { ifNoneExist: { identifier: 'urn:test|k-1' } });
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.resource.id).toBe(first.resource.id);
    expect(await fhir.searchAll('Task', { identifier: 'urn:test|k-1' })).toHaveLength(1);
  });

  it('a stale If-Match loses with a version conflict', async () => {
    const { resource } = await fhir.create<Patient>({ resourceType: 'Patient', name: [{ family: 'Okafor' }] });
    await fhir.update({ ...resource, active: true }, { ifMatch: resource.meta!.versionId });
    await expect(
      fhir.update({ ...resource, active: false }, { ifMatch: resource.meta!.versionId }),
    ).rejects.toBeInstanceOf(FhirVersionConflictError);
  });

  it('follows next links across pages', async () => {
    for (let i = 0; i < 7; i++) await fhir.create<Patient>({ resourceType: 'Patient', name: [{ family: 'Paged' }] });
    const firstPage = await fhir.search<Patient>('Patient', { name: 'Paged', _count: 3 });
    expect(firstPage.link?.find((l) => l.relation === 'next')?.url).toContain(sandbox.baseUrl);
    expect(await fhir.searchAll('Patient', { name: 'Paged', _count: 3 })).toHaveLength(7);
  });

  it('runs a transaction bundle', async () => {
    const result: Bundle = await fhir.transaction([
      {
        fullUrl: 'urn:uuid:11111111-1111-4111-8111-111111111111',
        resource: { resourceType: 'Patient', name: [{ family: 'Tx' }] },
        request: { method: 'POST', url: 'Patient' },
      },
      {
        resource: {
          resourceType: 'Task',
          status: 'requested',
          intent: 'plan',
          for: { reference: 'urn:uuid:11111111-1111-4111-8111-111111111111' },
        },
        request: { method: 'POST', url: 'Task' },
      },
    ]);
    expect(result.type).toBe('transaction-response');
    const taskId = result.entry![1].response!.location!.split('/')[1];
    const task = await fhir.read<Task>('Task', taskId);
    expect(task.for?.reference).toMatch(/^Patient\/[0-9a-f-]+$/);
  });

  it('unknown ids are a typed not-found', async () => {
    await expect(fhir.read('Patient', 'does-not-exist')).rejects.toBeInstanceOf(FhirNotFoundError);
  });
});
