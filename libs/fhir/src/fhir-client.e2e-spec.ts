import type { Bundle, Patient, Task } from '@medplum/fhirtypes';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { FhirClient } from './fhir-client';
import { FhirHttpError, FhirVersionConflictError, FhirNotFoundError } from './fhir-errors';

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

  it("refuses what Medplum's server refuses (strict validation against R4): 400 with the issue, nothing written", async () => {
    const invalid = [
      { resourceType: 'Task', intent: 'plan' }, // status is required
      { resourceType: 'Task', status: 'draft', intent: 'plan', dueSoon: true }, // no such element
      { resourceType: 'Task', status: 'draft', intent: 'plan', for: { reference: 12 } }, // wrong type
    ] as unknown as Task[];
    for (const task of invalid) {
      const refused = await fhir.create(task).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(FhirHttpError);
      expect((refused as FhirHttpError).status).toBe(400);
      expect((refused as FhirHttpError).outcome?.issue?.[0]?.expression?.[0]).toMatch(/^Task\./);
    }
    const { resource } = await fhir.create<Task>({ resourceType: 'Task', status: 'draft', intent: 'plan' });
    await expect(fhir.update({ ...resource, status: undefined } as unknown as Task)).rejects.toMatchObject({
      status: 400,
    });
    // In a transaction: the whole Bundle refused, the valid entry beside it not written either.
    const key = `valid-beside-invalid-${Date.now()}`;
    await expect(
      fhir.transaction([
        {
          resource: {
            resourceType: 'Task',
            status: 'draft',
            intent: 'plan',
            identifier: [{ system: 'urn:test', value: key }],
          },
          request: { method: 'POST', url: 'Task' },
        },
        { resource: invalid[0], request: { method: 'POST', url: 'Task' } },
      ]),
    ).rejects.toMatchObject({ status: 400 });
    expect(await fhir.searchAll('Task', { identifier: `urn:test|${key}` })).toEqual([]);
    expect((await fhir.read<Task>('Task', resource.id!)).status).toBe('draft');
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
