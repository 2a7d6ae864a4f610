import request from 'supertest';
import type { Bundle, Subscription } from '@medplum/fhirtypes';
import { SUBSCRIPTION_CRITERIA } from '../apps/api/src/events/fhir-subscriptions';
import { runOperatorScript } from './support/operator-script';
import { startTestService, TEST_WEBHOOK_SECRET, type TestService } from './support/test-service';

/**
 * What an integrator runs to connect a Medplum or HAPI server (`npm run fhir:subscriptions`): the Subscriptions the
 * webhook needs, printed for either server or created on the configured one once, and each one's resource type one
 * the webhook acts on (so no Subscription is set up for nothing).
 */
describe('the FHIR Subscriptions the service needs', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  const env = () => ({ WEBHOOK_SECRET: TEST_WEBHOOK_SECRET, FHIR_BASE_URL: service.config.fhirBaseUrl! });
  const endpoint = 'https://careplans.clinic.test/webhooks/fhir';

  it('printed for Medplum (the secret it signs with) and for HAPI (the header it sends)', async () => {
    const medplum = await runScript(['medplum', endpoint], env());
    expect(medplum.code).toBe(0);
    const subscriptions = (JSON.parse(medplum.stdout) as Bundle<Subscription>).entry!.map((e) => e.resource!);
    expect(subscriptions.map((s) => s.criteria)).toEqual(SUBSCRIPTION_CRITERIA.map((c) => c.criteria));
    expect(subscriptions[0]).toMatchObject({
      status: 'active',
      channel: { type: 'rest-hook', endpoint, payload: 'application/fhir+json' },
      extension: [
        {
          url: 'https://www.medplum.com/fhir/StructureDefinition/subscription-secret',
          valueString: TEST_WEBHOOK_SECRET,
        },
      ],
    });
    const hapi = await runScript(['hapi', endpoint], env());
    const [first] = (JSON.parse(hapi.stdout) as Bundle<Subscription>).entry!.map((e) => e.resource!);
    expect(first).toMatchObject({
      status: 'requested',
      channel: { header: [`X-Webhook-Token: ${TEST_WEBHOOK_SECRET}`] },
    });
    expect(first.extension).toBeUndefined();

    // Wrong or missing arguments: the usage, nothing printed to POST.
    const bad = await runScript(['epic', endpoint], env());
    expect([bad.code, bad.stdout]).toEqual([2, '']);
    expect(bad.stderr).toMatch(/^usage: npm run fhir:subscriptions/);
    const noSecret = await runScript(['hapi', endpoint], { ...env(), WEBHOOK_SECRET: '' });
    expect(noSecret.code).toBe(1);
    expect(noSecret.stderr).toMatch(/WEBHOOK_SECRET is not set/);
  }, 60_000);

  it('created on the FHIR server once: run again, each is found and none is doubled', async () => {
    for (const flavour of ['hapi', 'medplum'] as const) {
      const at = `${endpoint}/${flavour}`;
      const criteria = SUBSCRIPTION_CRITERIA.map((c) => c.criteria);
      const first = await runScript([flavour, at, '--create'], env());
      expect(first.stderr).toBe('');
      expect(first.stdout.trim().split('\n')).toEqual(criteria.map((c) => `created  ${c}`));
      // Found by their exact criteria: `MedicationRequest` (deletions) is not taken for the closed orders' one.
      const again = await runScript([flavour, at, '--create'], env());
      expect(again.stdout.trim().split('\n')).toEqual(criteria.map((c) => `exists   ${c}`));
      const stored = await service.fhir.searchAll<Subscription>('Subscription', { url: at });
      expect(stored.map((s) => s.criteria).sort()).toEqual(criteria.sort());
    }
  }, 60_000);

  it('each resource type subscribed to is one the webhook acts on (HAPI style, by id)', async () => {
    for (const { criteria } of SUBSCRIPTION_CRITERIA) {
      const type = criteria.split('?')[0];
      const answer = await request(service.url)
        .put(`/webhooks/fhir/${type}/no-such-id`)
        .set('x-webhook-token', TEST_WEBHOOK_SECRET)
        .expect(202);
      expect([type, answer.body.issue[0].details.text]).not.toEqual([type, `Nothing to do for ${type}`]);
    }
  });

  it('HAPI is asked for the deletions the webhook acts on (DELETE, by id), and only those', async () => {
    const hapi = await runScript(['hapi', endpoint], env());
    const subscriptions = (JSON.parse(hapi.stdout) as Bundle<Subscription>).entry!.map((e) => e.resource!);
    const asksDeletions = (s: Subscription) =>
      (s.channel.extension ?? []).some(
        (e) =>
          e.url === 'http://hapifhir.io/fhir/StructureDefinition/subscription-send-delete-messages' &&
          e.valueBoolean === true,
      );
    for (const subscription of subscriptions) {
      const type = subscription.criteria.split('?')[0];
      const answer = await request(service.url)
        .delete(`/webhooks/fhir/${type}/no-such-id`)
        .set('x-webhook-token', TEST_WEBHOOK_SECRET)
        .expect(202);
      const actedOn = answer.body.issue[0].details.text !== `Nothing to do for a deleted ${type}`;
      // Asked for a type's deletions only where they are acted on; acted on, asked by some Subscription of the type
      // (orders by the one to every order: a deleted open order never matches the closed orders' criteria, and HAPI
      // cannot be asked for deletions alone).
      if (asksDeletions(subscription)) expect([type, actedOn]).toEqual([type, true]);
      if (actedOn)
        expect([type, subscriptions.some((s) => s.criteria.split('?')[0] === type && asksDeletions(s))]).toEqual([
          type,
          true,
        ]);
    }
    expect(subscriptions.filter((s) => s.channel.extension).map((s) => s.criteria)).toEqual([
      'Procedure?status=completed,entered-in-error',
      'Task',
      'CarePlan',
      'Appointment',
      'MedicationRequest',
      'DetectedIssue',
      'PlanDefinition',
    ]);
  }, 60_000);

  it('Medplum is asked for the deletions of open orders on their own (its supported-interaction extension)', async () => {
    const medplum = await runScript(['medplum', endpoint], env());
    const subscriptions = (JSON.parse(medplum.stdout) as Bundle<Subscription>).entry!.map((e) => e.resource!);
    const deletionsOnly = subscriptions.filter((s) =>
      s.extension?.some(
        (e) =>
          e.url === 'https://medplum.com/fhir/StructureDefinition/subscription-supported-interaction' &&
          e.valueCode === 'delete',
      ),
    );
    expect(deletionsOnly.map((s) => s.criteria)).toEqual(['MedicationRequest']);
    const answer = await request(service.url)
      .delete('/webhooks/fhir/MedicationRequest/no-such-id')
      .set('x-webhook-token', TEST_WEBHOOK_SECRET)
      .expect(202);
    expect(answer.body.issue[0].details.text).toBe('Queued the deleted MedicationRequest');
  }, 60_000);
});

const runScript = (args: string[], env: Record<string, string>) => runOperatorScript('fhir-subscriptions', args, env);
