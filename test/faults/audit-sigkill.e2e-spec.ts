import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import type { AuditEvent, Bundle } from '@medplum/fhirtypes';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { AUDIT_KEY_SYSTEM } from '@kc/protocols';
import { enrolPatient } from '../support/clinic';
import { startFlakyProxy, type FlakyProxy } from '../support/flaky-proxy';
import { startServiceProcess, type ServiceProcess } from '../support/service-process';
import { startTestService, TEST_JWT_SECRET, type TestService } from '../support/test-service';

/**
 * Who saw a patient's data must not depend on the process living: a clinician opens a patient's view while the FHIR
 * server refuses AuditEvents, the process is SIGKILLed, and the next process writes every one of those AuditEvents,
 * once each. The FHIR server (here in the test process) lives on behind a proxy that refuses AuditEvent writes
 * while told to.
 */
const VIEWS = 4;

describe('API killed while the FHIR server refuses its AuditEvents', () => {
  let sandbox: FhirSandbox;
  let proxy: FlakyProxy;
  let seeder: TestService;
  let spoolDir: string;
  let api: ServiceProcess | undefined;
  let patientId: string;
  let refuseAudit = false;
  /** The audit keys of the AuditEvents the proxy refused. */
  const refusedKeys = new Set<string>();

  const env = () => ({
    FHIR_BASE_URL: proxy.baseUrl,
    JWT_SECRET: TEST_JWT_SECRET,
    QUEUE_PREFIX: `kc-kill-audit-${process.pid}`,
    RUN_WORKER: 'false',
    POLL_INTERVAL_MS: '0',
    WORKLIST_RECONCILE_MS: '0',
    DEV_ISSUER: 'false',
    AUDIT_SPOOL_DIR: spoolDir,
  });

  beforeAll(async () => {
    sandbox = await startFhirSandbox();
    proxy = await startFlakyProxy(sandbox.baseUrl);
    proxy.intercept = (method, _path, body) => {
      if (!refuseAudit || method !== 'POST' || !body.includes('"AuditEvent"')) return undefined;
      for (const entry of (JSON.parse(body) as Bundle).entry ?? [])
        for (const tag of entry.resource?.meta?.tag ?? [])
          if (tag.system === AUDIT_KEY_SYSTEM) refusedKeys.add(tag.code!);
      return {
        status: 503,
        body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient' }] },
      };
    };
    seeder = await startTestService({ fhirBaseUrl: sandbox.baseUrl, runWorker: false });
    patientId = (await enrolPatient(seeder, 'ketamine-low-dose-series')).patient.split('/')[1];
    spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-audit-spool-'));
  }, 120_000);
  afterAll(async () => {
    await api?.kill();
    await seeder?.stop();
    await proxy?.close();
    await sandbox?.close();
    if (spoolDir) fs.rmSync(spoolDir, { recursive: true, force: true });
  });

  const patientAudits = () =>
    seeder.fhir.searchAll<AuditEvent>('AuditEvent', { entity: `Patient/${patientId}`, _count: 1000 });
  const keyOf = (event: AuditEvent) => event.meta?.tag?.find((t) => t.system === AUDIT_KEY_SYSTEM)?.code;

  async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('the next process writes every AuditEvent the killed one could not, once each', async () => {
    api = await startServiceProcess(env());
    const before = new Set((await patientAudits()).map((e) => e.id));
    refuseAudit = true;
    for (let i = 0; i < VIEWS; i++)
      await request(api.url).get(`/patients/${patientId}/timeline`).set(seeder.as('clinician')).expect(200);
    // Every view's AuditEvent was offered to the server and refused: it waits in the process, nowhere else.
    await until(`${VIEWS} refused AuditEvents`, () => refusedKeys.size === VIEWS);
    expect((await patientAudits()).filter((e) => !before.has(e.id))).toEqual([]);

    await api.kill();
    refuseAudit = false;
    api = await startServiceProcess(env());
    await allAdoptedWritten(api, VIEWS);
    const written = (await patientAudits()).filter((e) => !before.has(e.id));
    expect(written.map(keyOf).sort()).toEqual([...refusedKeys].sort());
    expect(written.every((e) => e.entity?.some((x) => x.what?.reference === `Patient/${patientId}`))).toBe(true);
    expect(written.every((e) => e.agent.some((a) => a.who?.reference === 'Practitioner/dr-test'))).toBe(true);
  }, 180_000);

  it('an AuditEvent the server took but whose answer was lost is not written again by the next process', async () => {
    // The server writes each AuditEvent batch, but the answer does not reach the service before it is killed.
    let answerLost = true;
    proxy.answerDelayMs = (method, _type, body) =>
      method === 'POST' && answerLost && body?.includes('"AuditEvent"') ? 60_000 : 0;
    const before = (await patientAudits()).length;
    await request(api!.url).get(`/patients/${patientId}/timeline`).set(seeder.as('clinician')).expect(200);
    await until('the AuditEvent on the server', async () => (await patientAudits()).length === before + 1);
    await api!.kill();
    answerLost = false;
    api = await startServiceProcess(env());
    await allAdoptedWritten(api, 1);
    expect((await patientAudits()).length).toBe(before + 1);
  }, 180_000);

  /** The process adopted `count` AuditEvents from the killed one's spool and has nothing left to write. */
  async function allAdoptedWritten(service: ServiceProcess, count: number): Promise<void> {
    await until(`${count} adopted AuditEvents written`, async () => {
      const metrics = await (await fetch(`${service.url}/metrics`)).text();
      return (
        metrics.includes(`kc_audit_events_total{result="adopted"} ${count}\n`) &&
        metrics.includes('kc_audit_events_pending 0\n')
      );
    });
  }
});
