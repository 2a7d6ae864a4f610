import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import type { Task } from '@medplum/fhirtypes';
import {
  actionOf,
  completeInfusion,
  enrolPatient,
  followUpTasks,
  queueIdle,
  reportInfusion,
  waitFor,
} from './support/clinic';
import { runOperatorScript } from './support/operator-script';
import { startTestService, type TestService } from './support/test-service';

const PLAN = 'ketamine-low-dose-series';

/**
 * Disaster recovery with the embedded store: `npm run fhir-store:restore` puts a backup in place and resets what the
 * service derived from the store in Redis. After it, the service agrees with the restored store: a Task whose
 * approval came after the backup awaits approval again (and is on the worklist), and an infusion whose follow-ups
 * were written after the backup gets them again, once.
 */
describe('restoring the embedded FHIR store from a backup', () => {
  let root: string;
  let service: TestService | undefined;
  beforeAll(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-restore-'))));
  afterAll(async () => {
    await service?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('the worklist and the follow-ups come back as the restored store has them', async () => {
    const prefix = `kc-test-restore-${randomUUID().slice(0, 8)}`;
    const options = {
      fhirDataDir: path.join(root, 'data'),
      fhirBackup: { dir: path.join(root, 'backups'), everyMs: 0, keep: 5 },
      queuePrefix: prefix,
    };
    service = await startTestService(options);
    // Before the backup: patient A's infusion followed up (a check awaiting approval), patient B's infusion on record.
    const a = await enrolPatient(service, PLAN);
    const aInfusion = await completeInfusion(service, a, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, aInfusion);
    const aCheck = (await followUpTasks(service, aInfusion)).find((t) => actionOf(t) === 'post-infusion-check')!;
    const b = await enrolPatient(service, PLAN);
    const bInfusion = await completeInfusion(service, b, '2027-01-05T10:00:00.000Z');
    await request(service.url).post('/operations/fhir-store/backups').set(service.as('admin')).expect(201);

    // After it: A's check approved, B's infusion followed up. Both are lost with the restore.
    await request(service.url)
      .post(`/tasks/${aCheck.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: aCheck.meta!.versionId })
      .expect(200);
    await reportInfusion(service, bInfusion);
    expect(await followUpTasks(service, bInfusion)).toHaveLength(2);
    await service.stop();
    service = undefined;

    const restore = await runRestore(['latest'], {
      FHIR_DATA_DIR: options.fhirDataDir,
      FHIR_BACKUP_DIR: options.fhirBackup.dir,
      QUEUE_PREFIX: prefix,
    });
    expect(restore).toMatchObject({ code: 0 });
    expect(restore.stdout).toMatch(/^restored .*fhir-.*\.sqlite\n/);
    expect(restore.stdout).toMatch(/the store it replaced is kept as .*fhir\.sqlite\.replaced-/);
    expect(restore.stdout).toMatch(
      /worklist index dropped \([1-9]\d* keys\), completed jobs forgotten .*"followups":[1-9].*, sweeps queued: reconcile-procedures-after-restore-\d+, sweep-reminders-after-restore-\d+/,
    );

    // No scheduled reconciliation (reconcileEveryMs 0): the sweeps the restore queued redo the lost work at start.
    service = await startTestService(options);
    const onWorklist = async (patient: string) => {
      const res = await request(service!.url).get('/worklist').query({ patient }).set(service!.as('clinician'));
      return (res.body.items as { id: string }[]).map((i) => i.id);
    };
    // A's check is a draft again in the store, and the worklist lists it.
    expect((await service.fhir.read<Task>('Task', aCheck.id!)).status).toBe('draft');
    await waitFor(async () => (await onWorklist(a.patient)).includes(aCheck.id!), "A's check on the worklist again");
    // B's follow-ups written again by the reconciliation sweep the restore queued, once each, and listed.
    const bTasks = await waitFor(async () => {
      const found = await followUpTasks(service!, bInfusion);
      return found.length === 2 && found;
    }, "B's follow-ups written again");
    await waitFor(async () => {
      const listed = await onWorklist(b.patient);
      return bTasks.every((t) => listed.includes(t.id!));
    }, "B's follow-ups on the worklist");
    await queueIdle(service);
    expect(await followUpTasks(service, bInfusion)).toHaveLength(2);
  });
});

const runRestore = (args: string[], env: Record<string, string>) => runOperatorScript('restore-fhir-store', args, env);
