import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import type { CommunicationRequest, MedicationRequest, Subscription, Task } from '@medplum/fhirtypes';
import { orderKeySearch } from '@kc/task-states';
import { SUBSCRIPTION_CRITERIA } from '../apps/api/src/events/fhir-subscriptions';
import {
  actionOf,
  approveFirstSession,
  completeInfusion,
  enrolPatient,
  followUpTasks,
  waitFor,
  worklistIdsOf,
} from './support/clinic';
import { activeCondition, PREGNANCY } from './fixtures/patient-data';
import { startTestService, type TestService } from './support/test-service';

/** The service's own Subscriptions on its embedded store. */
const ownSubscriptions = async (on: TestService) =>
  (await on.fhir.searchAll<Subscription>('Subscription', {})).filter((s) =>
    s.reason?.startsWith('ketamine-careplans: '),
  );

/**
 * With no FHIR server configured, the service subscribes to its embedded store's changes at start, as it is
 * subscribed to Medplum's: what is written to the store by anyone (an EHR, a pump, a portal) reaches the service at
 * once. Nothing here polls (POLL_INTERVAL_MS=0) or sweeps, and nothing posts to the service's event API: only the
 * store's own notifications can tell it.
 */
describe('the embedded store tells the service of its changes', () => {
  let service: TestService;
  const PLAN = 'ketamine-low-dose-series';

  beforeAll(async () => {
    // No WEBHOOK_SECRET: the service signs its Subscriptions with a secret of its own.
    // No grace for an EHR's replacement order (a clinic waits ORDER_CHANGE_GRACE_MS, 60 s).
    service = await startTestService({
      fhirSandboxSubscriptions: true,
      webhookSecret: undefined,
      orderChangeGraceMs: 0,
    });
  });
  afterAll(async () => {
    await service?.stop();
  });

  it('subscribes its webhook to every kind it acts on, once', async () => {
    const subscriptions = await ownSubscriptions(service);
    expect(subscriptions.map((s) => s.criteria).sort()).toEqual(SUBSCRIPTION_CRITERIA.map((c) => c.criteria).sort());
    for (const s of subscriptions) {
      expect(s.status).toBe('active');
      expect(s.channel.endpoint).toBe(`${service.url}/webhooks/fhir`);
    }
  });

  it('writes the follow-ups of an infusion recorded straight in the store', async () => {
    const enrolment = await enrolPatient(service, PLAN);
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    const tasks = await waitFor(async () => {
      const found = await followUpTasks(service, procedureId);
      return found.some((t) => actionOf(t) === 'post-infusion-check') && found;
    }, 'the follow-ups of the infusion the store told of');
    expect(tasks.map(actionOf)).toContain('post-infusion-check');
    // Operators see the notifications on /metrics.
    const metrics = (await request(service.url).get('/metrics').expect(200)).text;
    const delivered = Number(/^kc_fhir_store_notifications_delivered_total (\d+)/m.exec(metrics)?.[1]);
    expect(delivered).toBeGreaterThan(0);
    expect(metrics).toMatch(/^kc_fhir_store_notifications_pending \d+/m);
    expect(metrics).toMatch(/^kc_fhir_store_notification_outbox \d+/m);
  });

  it('holds an approved order at once when a contraindication is recorded in the store', async () => {
    const enrolment = await enrolPatient(service, PLAN);
    const [instructions] = (
      await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` })
    ).filter((t) => actionOf(t) === 'patient-instructions');
    await request(service.url)
      .post(`/tasks/${instructions.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: instructions.meta!.versionId })
      .expect(200);
    const [order] = await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
      identifier: `https://ketamine-careplans.example/fhir/NamingSystem/order-key|Task/${instructions.id}`,
    });
    expect(order.status).toBe('active');

    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], enrolment.patient));
    const held = await waitFor(async () => {
      const now = await service.fhir.read<CommunicationRequest>('CommunicationRequest', order.id!);
      return now.status === 'on-hold' && now;
    }, 'the approved order to be held');
    expect(held.statusReason?.coding?.[0].code).toBe('held-for-contraindication');
  });

  it('returns an approved session to a clinician when its order is deleted in the store', async () => {
    const enrolment = await enrolPatient(service, PLAN);
    const session = await approveFirstSession(service, enrolment.carePlanId);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    expect(
      (await fetch(`${service.config.fhirBaseUrl}/MedicationRequest/${order.id}`, { method: 'DELETE' })).status,
    ).toBe(200);
    const returned = await waitFor(async () => {
      const task = await service.fhir.read<Task>('Task', session.id!);
      return task.status === 'draft' && task;
    }, 'the session back to awaiting approval');
    expect(returned.statusReason?.text).toMatch(/^Its order was cancelled in the EHR \(deleted on the FHIR server\)/);
  });

  it('takes a Task deleted in the store off the worklist', async () => {
    const enrolment = await enrolPatient(service, PLAN);
    const listed = () => worklistIdsOf(service, enrolment.patient);
    const [gone] = await listed();
    expect(gone).toBeDefined();
    // Straight to the store, as an EHR deletes it: the service's own API is not told.
    expect((await fetch(`${service.config.fhirBaseUrl}/Task/${gone}`, { method: 'DELETE' })).status).toBe(200);
    await waitFor(async () => !(await listed()).includes(gone), 'the deleted Task to leave the worklist');
  });
});

describe('the embedded store’s Subscriptions across restarts', () => {
  it('points them at the webhook the service listens on now, leaving others’ Subscriptions alone', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-subscriptions-'));
    const options = { fhirSandboxSubscriptions: true, fhirDataDir: dataDir, auditSpoolDir: ':memory:' };
    let service = await startTestService(options);
    try {
      const ehrs = await service.fhir.create<Subscription>({
        resourceType: 'Subscription',
        status: 'active',
        reason: "An EHR's own",
        criteria: 'Patient',
        channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/ehr' },
      });
      const before = service.url;
      await service.stop();
      service = await startTestService({ ...options, webhookSecret: 'another-secret' });
      expect(service.url).not.toBe(before);
      const all = await service.fhir.searchAll<Subscription>('Subscription', {});
      const own = all.filter((s) => s.reason?.startsWith('ketamine-careplans: '));
      expect(own).toHaveLength(SUBSCRIPTION_CRITERIA.length);
      expect(new Set(own.map((s) => s.channel.endpoint))).toEqual(new Set([`${service.url}/webhooks/fhir`]));
      expect(all.find((s) => s.id === ehrs.resource.id)?.channel.endpoint).toBe('http://127.0.0.1:9/ehr');

      // And they work: an infusion written now gets its follow-ups.
      const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
      const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
      await waitFor(
        async () => (await followUpTasks(service, procedureId)).length > 0,
        'the follow-ups after the restart',
      );
    } finally {
      await service.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('an infusion whose notification a stop cut short is followed up after the restart, with no poll', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-subscriptions-'));
    const options = { fhirSandboxSubscriptions: true, fhirDataDir: dataDir, auditSpoolDir: ':memory:' };
    let service = await startTestService(options);
    try {
      const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
      // The store's Subscriptions signed with a secret the webhook does not know (changed behind the service's back):
      // what the store sends from now on is refused, and waits for its retry.
      for (const subscription of await ownSubscriptions(service))
        await service.fhir.update<Subscription>({
          ...subscription,
          extension: subscription.extension?.map((e) =>
            e.url.endsWith('subscription-secret') ? { ...e, valueString: 'not-the-webhooks' } : e,
          ),
        });
      const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
      await service.stop();
      // Before session 38 its notification was lost with the process: with no poll, never followed up.
      service = await startTestService(options);
      await waitFor(
        async () => (await followUpTasks(service, procedureId)).length > 0,
        'the follow-ups of the infusion whose notification the stop cut short',
        20_000,
      );
    } finally {
      await service.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
