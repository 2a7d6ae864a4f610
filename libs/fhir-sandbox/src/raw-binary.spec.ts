import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Binary } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { startFhirSandbox, type FhirSandbox } from './fhir-sandbox-server';

/**
 * A file posted raw to `/Binary` (a bulk export's NDJSON), as Medplum takes one: kept beside its Binary, served raw to
 * a read that asks for its content type and as the Binary's other fields to one that asks for FHIR JSON, past the
 * 1 MB base64Binary limit of validation, across a restart, and gone with its Binary.
 */
describe('Binaries posted raw to the embedded store', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-raw-binary-'));
  let sandbox: FhirSandbox | undefined;
  afterAll(async () => {
    await sandbox?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps a 3 MB file as it was sent, serves it raw or as FHIR JSON, keeps it across a restart, deletes it', async () => {
    sandbox = await startFhirSandbox({ dataDir });
    let fhir = new FhirClient({ baseUrl: sandbox.baseUrl, maxAttempts: 1 });
    const line = JSON.stringify({
      resourceType: 'Task',
      status: 'draft',
      intent: 'plan',
      description: 'é'.repeat(500),
    });
    const content = Array.from({ length: 3000 }, () => line).join('\n') + '\n';
    expect(Buffer.byteLength(content)).toBeGreaterThan(3_000_000);
    const id = await fhir.createBinary('application/fhir+ndjson', content);

    expect(await fhir.readBinary(id, 'application/fhir+ndjson')).toBe(content);
    const asJson = await fhir.read<Binary>('Binary', id);
    expect(asJson).toMatchObject({ resourceType: 'Binary', id, contentType: 'application/fhir+ndjson' });
    expect(asJson.data).toBeUndefined();

    await sandbox.close();
    sandbox = await startFhirSandbox({ dataDir });
    fhir = new FhirClient({ baseUrl: sandbox.baseUrl, maxAttempts: 1 });
    expect(await fhir.readBinary(id, 'application/fhir+ndjson')).toBe(content);

    await fhir.delete('Binary', id);
    await expect(fhir.readBinary(id, 'application/fhir+ndjson')).rejects.toThrow(/answered 410|answered 404/);
    // Deleting again (a retried deletion job) is no failure.
    await fhir.delete('Binary', id);
  });
});
