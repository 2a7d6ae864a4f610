import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import type { OperationOutcome, Patient } from '@medplum/fhirtypes';
import { DB_FILE, SqliteRepository } from '@kc/fhir-sandbox';
import { waitFor } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

/**
 * Backups of the embedded FHIR store while the service runs: on a schedule (the first at once when there is none)
 * and when an admin asks; each a checked single file, the oldest pruned; restoring one (copy it to fhir.sqlite in an
 * empty data directory, start) brings back what was written before it.
 */
describe('embedded FHIR store backups', () => {
  let root: string;
  let service: TestService | undefined;
  beforeAll(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-backup-'))));
  afterAll(async () => {
    await service?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const backupDir = () => path.join(root, 'backups');
  const list = (s: TestService) => request(s.url).get('/operations/fhir-store/backups').set(s.as('admin')).expect(200);

  it('the schedule writes one at start; an admin writes one on demand; the restored copy holds the Patient', async () => {
    service = await startTestService({
      fhirDataDir: path.join(root, 'data'),
      fhirBackup: { dir: backupDir(), everyMs: 3600_000, keep: 2 },
    });
    // None on disk: the first scheduled one is due at once.
    const [scheduled] = await waitFor(async () => {
      const found = (await list(service!)).body.backups as { name: string }[];
      return found.length === 1 && found;
    }, 'the first scheduled backup');
    expect(scheduled.name).toMatch(/^fhir-\d{4}-\d{2}-\d{2}T[\d-]+Z\.sqlite$/);

    const { resource: patient } = await service.fhir.create<Patient>({
      resourceType: 'Patient',
      name: [{ family: 'Backed-up' }],
    });
    const made = await request(service.url).post('/operations/fhir-store/backups').set(service.as('admin')).expect(201);
    expect(made.body).toMatchObject({ name: expect.stringMatching(/\.sqlite$/), bytes: expect.any(Number) });
    expect(made.body.resources).toBeGreaterThan(0);
    const listed = (await list(service)).body as { dir: string; backups: { name: string; bytes: number }[] };
    expect(listed.dir).toBe(backupDir());
    expect(listed.backups.map((b) => b.name)).toEqual([made.body.name, scheduled.name]);

    // Operators alert on the newest backup's age.
    const metrics = await request(service.url).get('/metrics').set(service.as('admin')).expect(200);
    const newest = Number(/^kc_fhir_store_last_backup_timestamp_seconds (\S+)$/m.exec(metrics.text)?.[1]);
    expect(Math.abs(newest * 1000 - Date.now())).toBeLessThan(60_000);

    // A third: only the newest two are kept.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const third = await request(service.url)
      .post('/operations/fhir-store/backups')
      .set(service.as('admin'))
      .expect(201);
    expect((await list(service)).body.backups.map((b: { name: string }) => b.name)).toEqual([
      third.body.name,
      made.body.name,
    ]);

    // Restore: the service stopped, the backup copied into an empty data directory as fhir.sqlite.
    await service.stop();
    service = undefined;
    const restoredDir = path.join(root, 'restored');
    fs.mkdirSync(restoredDir);
    fs.copyFileSync(path.join(backupDir(), made.body.name as string), path.join(restoredDir, DB_FILE));
    service = await startTestService({ fhirDataDir: restoredDir, fhirStoreSync: 'full' });
    expect((service.sandbox!.repo as SqliteRepository).sync()).toBe('full');
    expect(await service.fhir.read<Patient>('Patient', patient.id!)).toMatchObject({ name: [{ family: 'Backed-up' }] });
  });

  it('admins only; a service without an embedded store to back up says why (409)', async () => {
    await service?.stop();
    service = await startTestService();
    await request(service.url).post('/operations/fhir-store/backups').set(service.as('clinician')).expect(403);
    await request(service.url).get('/operations/fhir-store/backups').expect(401);
    const refused = await request(service.url)
      .post('/operations/fhir-store/backups')
      .set(service.as('admin'))
      .expect(409);
    expect((refused.body as OperationOutcome).issue[0].details?.text).toMatch(/FHIR_BACKUP_DIR/);
  });

  it('a backup directory that cannot be written: 503 with why, and the store keeps serving', async () => {
    await service?.stop();
    const blocked = path.join(root, 'not-a-directory');
    fs.writeFileSync(blocked, '');
    service = await startTestService({ fhirBackup: { dir: path.join(blocked, 'backups'), everyMs: 0, keep: 1 } });
    const failed = await request(service.url)
      .post('/operations/fhir-store/backups')
      .set(service.as('admin'))
      .expect(503);
    expect((failed.body as OperationOutcome).issue[0].details?.text).toMatch(/^The backup failed: /);
    expect((await service.fhir.create<Patient>({ resourceType: 'Patient' })).resource.id).toBeDefined();
  });
});
