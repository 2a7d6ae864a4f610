import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import { enrolPatient } from './support/clinic';
import { startTestService, TEST_JWT_SECRET, type TestService } from './support/test-service';

/** An EHR's authorization server's introspection endpoint (RFC 7662): what it says of each token, and what it was sent. */
interface AuthorizationServer {
  url: string;
  /** Each token's answer; a token not here is inactive. */
  tokens: Map<string, Record<string, unknown>>;
  /** Its answer's status instead of the token's (a server in trouble); 0 = answer. */
  failWith: number;
  asked: { authorization?: string; contentType?: string; body: string }[];
  close(): Promise<void>;
}

async function startAuthorizationServer(): Promise<AuthorizationServer> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      as.asked.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], body });
      if (as.failWith) return void res.writeHead(as.failWith).end();
      const token = new URLSearchParams(body).get('token') ?? '';
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify(as.tokens.get(token) ?? { active: false }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const as: AuthorizationServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2/introspect`,
    tokens: new Map(),
    failWith: 0,
    asked: [],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return as;
}

/**
 * An EHR's authorization server may issue opaque access tokens (no JWT to verify here), and may revoke a token before
 * it expires. Such a token is asked about at its introspection endpoint (TOKEN_INTROSPECTION_URL, RFC 7662), with this
 * service's client credentials, and is then held to what the answer says: active, its SMART scopes, its patient, its
 * role by SMART_ROLES. Before session 61 a token that was no JWT was refused (401), and a revoked JWT was good until it
 * expired.
 */
describe('tokens an authorization server vouches for (RFC 7662 introspection)', () => {
  let as: AuthorizationServer;
  let service: TestService;
  let enrolment: { patient: string; carePlanId: string };
  const now = () => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    as = await startAuthorizationServer();
    service = await startTestService({
      auth: {
        jwtSecret: TEST_JWT_SECRET,
        smartRoles: { system: 'integration', Practitioner: 'clinician' },
        // Asked on every request here (a clinic: kept a minute), so a revocation is seen at once.
        introspection: {
          url: as.url,
          clientId: 'ketamine careplans',
          clientSecret: 's3cret:&',
          cacheSeconds: 0,
          checkJwts: false,
        },
      },
    });
    enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
  }, 60_000);
  afterAll(async () => {
    await service.stop();
    await as.close();
  });
  afterEach(() => {
    as.failWith = 0;
  });

  const asBearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  const refusal = (res: request.Response) => (res.body as OperationOutcome).issue?.[0]?.details?.text;

  it("an EHR backend service's opaque token reads what its scopes grant, as the integration SMART_ROLES makes it", async () => {
    as.tokens.set('opaque-backend-1', {
      active: true,
      client_id: 'ehr-backend',
      scope: 'system/CarePlan.rs',
      iat: now(),
      exp: now() + 300,
    });
    const before = as.asked.length;
    const plans = await request(service.url)
      .get(`/fhir/CarePlan?patient=${enrolment.patient}`)
      .set(asBearer('opaque-backend-1'))
      .expect(200);
    expect((plans.body as Bundle).entry?.map((e) => e.resource?.id)).toEqual([enrolment.carePlanId]);
    // Asked as RFC 7662 says: a form POST of the token, with this service's client credentials (form-encoded, Basic).
    const [asked] = as.asked.slice(before);
    expect(asked.contentType).toBe('application/x-www-form-urlencoded');
    expect(new URLSearchParams(asked.body).get('token')).toBe('opaque-backend-1');
    expect(asked.authorization).toBe(`Basic ${Buffer.from('ketamine+careplans:s3cret%3A%26').toString('base64')}`);
    // Bounded by its scopes: no Task search.
    const tasks = await request(service.url)
      .get(`/fhir/Task?patient=${enrolment.patient}`)
      .set(asBearer('opaque-backend-1'))
      .expect(403);
    expect(refusal(tasks)).toMatch(/needs system\/Task\.s .*grants system\/CarePlan\.rs/);
  });

  it('a token the authorization server revoked, or never issued, is refused (401)', async () => {
    as.tokens.set('opaque-backend-2', {
      active: true,
      client_id: 'ehr-backend',
      scope: 'system/CarePlan.rs',
      exp: now() + 300,
    });
    const read = () =>
      request(service.url).get(`/fhir/CarePlan/${enrolment.carePlanId}`).set(asBearer('opaque-backend-2'));
    expect((await read()).status).toBe(200);
    as.tokens.set('opaque-backend-2', { active: false });
    const revoked = await read();
    expect(revoked.status).toBe(401);
    expect(revoked.body.resourceType).toBe('OperationOutcome');
    await request(service.url).get(`/fhir/CarePlan/${enrolment.carePlanId}`).set(asBearer('never-issued')).expect(401);
  });

  it('an active token past its expiry, or outliving JWT_MAX_LIFETIME_SECONDS, is refused whatever the server says', async () => {
    as.tokens.set('opaque-expired', {
      active: true,
      client_id: 'ehr-backend',
      scope: 'system/CarePlan.rs',
      exp: now() - 3600,
    });
    as.tokens.set('opaque-forever', {
      active: true,
      client_id: 'ehr-backend',
      scope: 'system/CarePlan.rs',
      iat: now(),
      exp: now() + 400 * 24 * 3600,
    });
    for (const token of ['opaque-expired', 'opaque-forever'])
      await request(service.url).get(`/fhir/CarePlan/${enrolment.carePlanId}`).set(asBearer(token)).expect(401);
  });

  it('a clinician signed in at the EHR acts as a clinician within their scopes, named by their fhirUser', async () => {
    as.tokens.set('opaque-user-1', {
      active: true,
      sub: 'dr-ehr',
      fhirUser: 'Practitioner/dr-ehr',
      scope: 'user/Task.rs',
      exp: now() + 300,
    });
    const worklist = await request(service.url).get('/worklist').set(asBearer('opaque-user-1')).expect(200);
    expect(worklist.body).toHaveProperty('items');
  });

  it('the authorization server failing is 503 with Retry-After, not 401: the client keeps its token and tries again', async () => {
    as.tokens.set('opaque-backend-3', {
      active: true,
      client_id: 'ehr-backend',
      scope: 'system/CarePlan.rs',
      exp: now() + 300,
    });
    as.failWith = 500;
    const res = await request(service.url)
      .get(`/fhir/CarePlan/${enrolment.carePlanId}`)
      .set(asBearer('opaque-backend-3'))
      .expect(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(refusal(res)).toMatch(/authorization server could not be asked/);
    as.failWith = 0;
    await request(service.url)
      .get(`/fhir/CarePlan/${enrolment.carePlanId}`)
      .set(asBearer('opaque-backend-3'))
      .expect(200);
    // What an operator alerts on: the server's answers counted, failures apart (the earlier tests' too).
    const metrics = (await request(service.url).get('/metrics').expect(200)).text;
    for (const result of ['active', 'inactive', 'unavailable'])
      expect(metrics).toMatch(new RegExp(`^kc_token_introspections_total\\{result="${result}"\\} [1-9]`, 'm'));
  });

  it("this service's own JWTs are verified here, not asked about (TOKEN_INTROSPECTION_FOR=opaque)", async () => {
    const before = as.asked.length;
    await request(service.url).get('/worklist').set(service.as('clinician')).expect(200);
    expect(as.asked.length).toBe(before);
  });
});
