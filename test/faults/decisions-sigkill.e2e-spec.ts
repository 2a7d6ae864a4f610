import request from 'supertest';
import type { MedicationRequest, Provenance, Task } from '@medplum/fhirtypes';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { stateOf } from '@kc/task-states';
import { enrolPatient } from '../support/clinic';
import { startServiceProcess, type ServiceProcess } from '../support/service-process';
import { startTestService, TEST_JWT_SECRET, type TestService } from '../support/test-service';

/**
 * Issue 12 item 1: the API process SIGKILLed in the middle of 300 approvals. The FHIR server (here in the test
 * process) lives on. Every Task must end either untouched or approved with exactly one Provenance and one order,
 * never approved without them; after a restart, retrying every decision succeeds and writes nothing twice.
 */
const APPROVALS = 300;
const CLIENTS = 8;
const KILL_AFTER = 120;
const ORDER_KEY = 'https://ketamine-careplans.example/fhir/NamingSystem/order-key';

describe('API killed during approvals', () => {
  let sandbox: FhirSandbox;
  let seeder: TestService;
  let api: ServiceProcess | undefined;
  let tasks: Task[];

  const env = () => ({
    FHIR_BASE_URL: sandbox.baseUrl,
    JWT_SECRET: TEST_JWT_SECRET,
    QUEUE_PREFIX: `kc-kill-${process.pid}`,
    RUN_WORKER: 'false',
    POLL_INTERVAL_MS: '0',
    WORKLIST_RECONCILE_MS: '0',
    DEV_ISSUER: 'false',
  });

  beforeAll(async () => {
    sandbox = await startFhirSandbox();
    seeder = await startTestService({ fhirBaseUrl: sandbox.baseUrl, runWorker: false });
    tasks = [];
    while (tasks.length < APPROVALS) {
      const batch = await Promise.all(
        Array.from({ length: 6 }, () => enrolPatient(seeder, 'ketamine-low-dose-series')),
      );
      for (const { carePlanId } of batch) {
        const planTasks = await seeder.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}` });
        tasks.push(...planTasks.filter((t) => stateOf(t) === 'awaiting-approval'));
      }
    }
    tasks = tasks.slice(0, APPROVALS);
  }, 240_000);
  afterAll(async () => {
    await api?.kill();
    await seeder?.stop();
    await sandbox?.close();
  });

  /** Per Task: its state now, its Provenances and its orders, read from the FHIR server. */
  async function outcome() {
    const provenance = await seeder.fhir.searchAll<Provenance>('Provenance', { _count: 1000 });
    const orders = await seeder.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      intent: 'order',
      _count: 1000,
    });
    const now = await seeder.fhir.searchAll<Task>('Task', { _id: tasks.map((t) => t.id).join(','), _count: 1000 });
    return now.map((task) => ({
      task,
      approved: stateOf(task) === 'approved',
      provenance: provenance.filter((p) =>
        p.target?.some((t) => t.reference?.split('/_history/')[0] === `Task/${task.id}`),
      ).length,
      orders: orders.filter((o) => o.identifier?.some((i) => i.system === ORDER_KEY && i.value === `Task/${task.id}`))
        .length,
      ordersExpected: task.focus?.reference?.startsWith('MedicationRequest/') ? 1 : 0,
    }));
  }

  function approve(url: string, task: Task) {
    return request(url)
      .post(`/tasks/${task.id}/$approve`)
      .set(seeder.as('clinician'))
      .send({ versionId: task.meta!.versionId })
      .then((res) => res.status)
      .catch(() => 0); // the connection died with the process
  }

  it('leaves every Task untouched or approved with exactly one Provenance and order; retries finish the rest', async () => {
    api = await startServiceProcess(env());
    const running = api;
    const answered = new Map<string, number>();
    let next = 0;
    let killed: Promise<void> | undefined;
    const client = async () => {
      while (next < tasks.length) {
        const task = tasks[next++];
        answered.set(task.id!, await approve(running.url, task));
        if (answered.size >= KILL_AFTER && !killed) killed = running.kill();
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    await killed;
    const ok = [...answered.values()].filter((s) => s === 200).length;
    expect(ok).toBeGreaterThanOrEqual(KILL_AFTER - CLIENTS);
    expect(ok).toBeLessThan(APPROVALS); // the kill really cut the run short

    // After the crash: all or nothing per Task, and every 200 the clinicians saw is there.
    const afterCrash = await outcome();
    const broken = afterCrash.filter((o) =>
      o.approved ? o.provenance !== 1 || o.orders !== o.ordersExpected : o.provenance !== 0 || o.orders !== 0,
    );
    expect(
      broken.map((o) => `Task/${o.task.id}: approved ${o.approved}, ${o.provenance} prov, ${o.orders} orders`),
    ).toEqual([]);
    for (const o of afterCrash) if (answered.get(o.task.id!) === 200) expect(o.approved).toBe(true);

    // Restart and retry every decision with the version the clinician saw: all succeed, nothing written twice.
    api = await startServiceProcess(env());
    const retried = await Promise.all(tasks.map((task) => approve(api!.url, task)));
    expect(retried.filter((s) => s !== 200)).toEqual([]);
    const final = await outcome();
    expect(final.filter((o) => !o.approved || o.provenance !== 1 || o.orders !== o.ordersExpected)).toEqual([]);
    expect(final.filter((o) => o.ordersExpected).length).toBeGreaterThan(50);
  }, 300_000);
});
