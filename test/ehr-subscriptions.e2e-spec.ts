import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import request from 'supertest';
import { SignJWT } from 'jose';
import type { Bundle, OperationOutcome, Subscription, Task } from '@medplum/fhirtypes';
import { waitFor } from './support/clinic';
import { startTestService, TEST_JWT_SECRET, type TestService } from './support/test-service';

const SECRET_URL = 'https://www.medplum.com/fhir/StructureDefinition/subscription-secret';
const SECRET = 'an-ehr-secret-of-its-own-0123456789';

interface Delivered {
  body: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * FHIR Subscriptions for EHR integrations (since session 62): instead of polling the read API, an integration
 * subscribes an endpoint of its own (at an origin the operator allows) to a search it may run, and the FHIR server
 * posts each matching change there, signed with the integration's secret. Before, `/fhir/Subscription` was no route
 * here and the embedded store's port has no access control: an integration could only poll.
 */
describe('EHR subscriptions (rest-hook)', () => {
  let service: TestService;
  let receiver: http.Server;
  let endpoint: string;
  const delivered: Delivered[] = [];

  beforeAll(async () => {
    receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        delivered.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    endpoint = `${origin}/fhir-hooks`;
    service = await startTestService({
      subscriptionEndpointOrigins: [origin],
      auth: { jwtSecret: TEST_JWT_SECRET, smartRoles: { system: 'integration' } },
    });
  });
  afterAll(async () => {
    await service.stop();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  const as = async (subject: string, claims: Record<string, unknown> = { roles: ['integration'] }) => ({
    Authorization: `Bearer ${await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(subject)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET))}`,
  });
  const subscription = (criteria: string, more: Partial<Subscription> = {}): Subscription => ({
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'Ketamine sessions for our patient list',
    criteria,
    channel: {
      type: 'rest-hook',
      endpoint,
      payload: 'application/fhir+json',
      header: ['Authorization: Bearer ehr-token'],
    },
    extension: [{ url: SECRET_URL, valueString: SECRET }],
    ...more,
  });
  const refusal = (res: request.Response) => (res.body as OperationOutcome).issue?.[0]?.details?.text;
  const task = (patient: string, description: string): Task => ({
    resourceType: 'Task',
    status: 'ready',
    intent: 'order',
    for: { reference: patient },
    description,
  });

  it("delivers each matching change to the integration's endpoint, signed with its secret; its owner alone sees it", async () => {
    const ehr = await as('ehr-hooks');
    const created = await request(service.url)
      .post('/fhir/Subscription')
      .set(ehr)
      .send(subscription('Task?patient=Patient/sub-1&status=ready'))
      .expect(201);
    const made = created.body as Subscription;
    expect(created.headers.location).toBe(`${service.url}/fhir/Subscription/${made.id}`);
    expect(made).toMatchObject({ status: 'active', criteria: 'Task?patient=Patient%2Fsub-1&status=ready' });
    // The secret and the header's credentials are not shown back.
    expect(JSON.stringify(made)).not.toContain(SECRET);
    expect(made.channel.header).toEqual(['Authorization: (set)']);

    // Another patient's Task first, then the subscribed patient's: only that one reaches the endpoint.
    await service.fhir.create(task('Patient/sub-2', 'not theirs'));
    const { resource: theirs } = await service.fhir.create(task('Patient/sub-1', 'theirs'));
    const note = await waitFor(
      () => delivered.find((d) => d.body.includes(`"id":"${theirs.id}"`)),
      'the notification at the endpoint',
    );
    expect(JSON.parse(note.body)).toMatchObject({ resourceType: 'Task', id: theirs.id, description: 'theirs' });
    expect(note.headers['x-signature']).toBe(createHmac('sha256', SECRET).update(note.body).digest('hex'));
    expect(note.headers.authorization).toBe('Bearer ehr-token');
    expect(delivered.some((d) => d.body.includes('not theirs'))).toBe(false);

    // Its owner lists and reads it; another client, even an integration, sees nothing of it.
    const listed = (await request(service.url).get('/fhir/Subscription').set(ehr).expect(200)).body as Bundle;
    expect(listed.entry?.map((e) => e.resource?.id)).toEqual([made.id]);
    const other = await as('ehr-other');
    expect(
      ((await request(service.url).get('/fhir/Subscription').set(other).expect(200)).body as Bundle).entry,
    ).toEqual([]);
    await request(service.url).get(`/fhir/Subscription/${made.id}`).set(other).expect(404);
    await request(service.url).delete(`/fhir/Subscription/${made.id}`).set(other).expect(404);
    await request(service.url).get(`/fhir/Subscription/${made.id}`).set(ehr).expect(200);

    // Deleted by its owner: gone from the FHIR server, so its notifications stop.
    await request(service.url).delete(`/fhir/Subscription/${made.id}`).set(ehr).expect(204);
    await request(service.url).get(`/fhir/Subscription/${made.id}`).set(ehr).expect(404);
    expect(await service.fhir.readIfExists('Subscription', made.id!)).toBeUndefined();
  });

  it('refuses with an OperationOutcome what it will not subscribe: other origins, types, parameters, channels, scopes, roles', async () => {
    const ehr = await as('ehr-hooks');
    const post = (body: object, auth = ehr) => request(service.url).post('/fhir/Subscription').set(auth).send(body);
    const elsewhere = subscription('Task?patient=Patient/1', {
      channel: { type: 'rest-hook', endpoint: 'https://attacker.example/hook' },
    });
    expect(refusal(await post(elsewhere).expect(400))).toMatch(/channel.endpoint must be at an allowed origin/);
    expect(refusal(await post(subscription('Patient?name=x')).expect(400))).toMatch(/Patient/);
    expect(refusal(await post(subscription('Task?patient.name=x')).expect(400))).toMatch(/cannot search Task by/);
    expect(refusal(await post(subscription('Task?_count=1000')).expect(400))).toMatch(/cannot search Task by _count/);
    const email = subscription('Task', { channel: { type: 'email', endpoint: 'mailto:x@example.org' } });
    expect(refusal(await post(email).expect(400))).toMatch(/rest-hook/);
    const posing = subscription('Task', { reason: 'ketamine-careplans: webhook' });
    expect(refusal(await post(posing).expect(400))).toMatch(/this service's own/);
    const weak = subscription('Task', { extension: [{ url: SECRET_URL, valueString: 'short' }] });
    expect(refusal(await post(weak).expect(400))).toMatch(/secret must be 16 to 256 characters/);
    await post(subscription('AuditEvent')).expect(403);
    await post(subscription('Task'), service.as('clinician')).expect(403);
    await request(service.url).post('/fhir/Subscription').send(subscription('Task')).expect(401);
    // A system/ scope subscribes to what it may search; a patient/ scope to nothing.
    const carePlansOnly = await as('ehr-scoped', { scope: 'system/CarePlan.rs' });
    expect(refusal(await post(subscription('Task'), carePlansOnly).expect(403))).toMatch(/may not search Task/);
    await post(subscription('CarePlan?status=active'), carePlansOnly).expect(201);
    const patientScope = await as('app', { roles: ['integration'], scope: 'patient/*.rs', patient: 'Patient/1' });
    await post(subscription('Task?patient=Patient/1'), patientScope).expect(403);
  });

  it('creates none while the operator allows no endpoint', async () => {
    const closed = await startTestService();
    try {
      const res = await request(closed.url)
        .post('/fhir/Subscription')
        .set(closed.as('integration'))
        .send(subscription('Task'))
        .expect(403);
      expect(refusal(res)).toMatch(/SUBSCRIPTION_ENDPOINT_ORIGINS/);
    } finally {
      await closed.stop();
    }
  });
});
