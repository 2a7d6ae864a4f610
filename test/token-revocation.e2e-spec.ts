import * as net from 'node:net';
import request from 'supertest';
import { devSignIn } from './support/clinician';
import { startTestService, TEST_JWT_SECRET, type TestService } from './support/test-service';

/** A free port on this machine: the service's own address must be known before it starts (its introspection URL). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The dev issuer does what an EHR's authorization server does for a token's end: revocation (RFC 7009: a refresh token
 * gets no new access token, an access token is no longer active) and introspection (RFC 7662), which this service's
 * API asks with TOKEN_INTROSPECTION_FOR=all, so a revoked access token is refused before it expires. Before session 61
 * a signed-out clinician's tokens stayed good (the access token for its hour, the refresh token for the 12-hour
 * session).
 */
describe('revoked tokens (RFC 7009) refused through introspection (RFC 7662)', () => {
  let service: TestService;
  const credentials = { id: 'careplans-api', secret: 'introspection secret' };
  const basic = `Basic ${Buffer.from('careplans-api:introspection+secret').toString('base64')}`;

  beforeAll(async () => {
    const port = await freePort();
    service = await startTestService({
      port,
      publicUrl: `http://127.0.0.1:${port}`,
      oidc: {
        devIssuer: true,
        clientId: 'ketamine-careplans-ui',
        scope: 'openid fhirUser profile',
        devTokenSeconds: 3600,
      },
      auth: {
        jwtSecret: TEST_JWT_SECRET,
        introspection: {
          url: `http://127.0.0.1:${port}/dev-issuer/introspect`,
          clientId: credentials.id,
          clientSecret: credentials.secret,
          cacheSeconds: 0,
          checkJwts: true,
        },
      },
    });
  }, 60_000);
  afterAll(() => service.stop());

  const worklistWith = (token: unknown) =>
    request(service.url)
      .get('/worklist')
      .set({ Authorization: `Bearer ${String(token)}` });
  const revoke = (token: unknown, hint: string) =>
    request(service.url)
      .post('/dev-issuer/revoke')
      .type('form')
      .send({ token, token_type_hint: hint, client_id: 'ketamine-careplans-ui' });

  it('the issuer advertises both endpoints', async () => {
    const discovery = await request(service.url).get('/dev-issuer/.well-known/openid-configuration').expect(200);
    expect(discovery.body).toMatchObject({
      revocation_endpoint: `${service.url}/dev-issuer/revoke`,
      introspection_endpoint: `${service.url}/dev-issuer/introspect`,
    });
    const smart = await request(service.url).get('/fhir/.well-known/smart-configuration').expect(200);
    expect(smart.body.revocation_endpoint).toBe(`${service.url}/dev-issuer/revoke`);
  });

  it("a signed-in clinician's access token works until revoked, then is refused at once; the refresh token likewise", async () => {
    const tokens = await devSignIn(service, 'clinician');
    await worklistWith(tokens.access_token).expect(200);
    // The introspection answer carries the token's claims: the API reads the role and fhirUser from it as from the JWT.
    const asked = await request(service.url)
      .post('/dev-issuer/introspect')
      .set('authorization', basic)
      .type('form')
      .send({ token: tokens.access_token });
    expect(asked.body).toMatchObject({
      active: true,
      sub: 'clinician',
      fhirUser: 'Practitioner/dev-clinician',
      roles: ['clinician'],
      client_id: 'ketamine-careplans-ui',
    });

    await revoke(tokens.access_token, 'access_token').expect(200, {});
    const refused = await worklistWith(tokens.access_token).expect(401);
    expect(refused.body.resourceType).toBe('OperationOutcome');
    await revoke(tokens.refresh_token, 'refresh_token').expect(200, {});
    const refreshed = await request(service.url).post('/dev-issuer/token').type('form').send({
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      client_id: 'ketamine-careplans-ui',
    });
    expect(refreshed.status).toBe(400);
    // Another clinician's session is untouched; a token never issued revokes nothing and is no error.
    const other = await devSignIn(service, 'clinician');
    await worklistWith(other.access_token).expect(200);
    await revoke('never-issued', 'access_token').expect(200, {});
  });

  it('the introspection endpoint answers only the resource server it knows (HTTP Basic), else 401', async () => {
    const tokens = await devSignIn(service, 'clinician');
    const anonymous = await request(service.url)
      .post('/dev-issuer/introspect')
      .type('form')
      .send({ token: tokens.access_token });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toBe('invalid_client');
  });
});
