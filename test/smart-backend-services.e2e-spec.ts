import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { DEV_ISSUER } from './support/clinician';
import { enrolPatient } from './support/clinic';
import { startTestService, TEST_JWT_SECRET, type TestService } from './support/test-service';

/**
 * SMART Backend Services against the dev issuer (DEV_ISSUER_CLIENTS): an EHR's backend client signs an assertion with
 * its own key, gets a short-lived token with the system/ scopes it is registered for, and reads with it what those
 * scopes grant (SMART_ROLES makes it an integration, as an EHR's authorization server would need).
 */
describe('SMART Backend Services (client credentials, private_key_jwt)', () => {
  const CLIENT = 'ehr-backend';
  let service: TestService;
  let clientKey: KeyLike;
  let tokenEndpoint: string;
  let patient: string;
  beforeAll(async () => {
    const pair = await generateKeyPair('RS384');
    clientKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'ehr-1', alg: 'RS384' };
    service = await startTestService({
      oidc: {
        ...DEV_ISSUER,
        devClients: { [CLIENT]: { jwks: { keys: [jwk] }, scope: 'system/CarePlan.rs system/Task.rs' } },
      },
      auth: { jwtSecret: TEST_JWT_SECRET, smartRoles: { system: 'integration' } },
    });
    tokenEndpoint = `${service.url}/dev-issuer/token`;
    ({ patient } = await enrolPatient(service, 'ketamine-low-dose-series'));
  }, 60_000);
  afterAll(() => service.stop());

  const assertion = (claims: { iss?: string; aud?: string; key?: KeyLike; jti?: string } = {}) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'RS384', kid: 'ehr-1' })
      .setIssuer(claims.iss ?? CLIENT)
      .setSubject(claims.iss ?? CLIENT)
      .setAudience(claims.aud ?? tokenEndpoint)
      .setJti(claims.jti ?? randomUUID())
      .setExpirationTime('4m')
      .sign(claims.key ?? clientKey);
  const token = async (signed: string, scope?: string) =>
    request(service.url)
      .post('/dev-issuer/token')
      .type('form')
      .send({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: signed,
        ...(scope ? { scope } : {}),
      });

  it('advertises the grant in its SMART configuration', async () => {
    const smart = await request(service.url).get('/fhir/.well-known/smart-configuration').expect(200);
    expect(smart.body.grant_types_supported).toContain('client_credentials');
    expect(smart.body.token_endpoint_auth_methods_supported).toContain('private_key_jwt');
    expect(smart.body.token_endpoint_auth_signing_alg_values_supported).toEqual(
      expect.arrayContaining(['RS384', 'ES384']),
    );
    expect(smart.body.capabilities).toContain('client-confidential-asymmetric');
  });

  it('grants a registered client the scopes it asks for that it may have, and its token reads what they grant', async () => {
    const answer = await token(await assertion(), 'system/CarePlan.rs system/MedicationRequest.rs');
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ token_type: 'Bearer', scope: 'system/CarePlan.rs' });
    expect(answer.body.expires_in).toBeLessThanOrEqual(300);
    expect(answer.body.refresh_token).toBeUndefined();
    const bearer = { Authorization: `Bearer ${answer.body.access_token}` };
    const plans = await request(service.url).get(`/fhir/CarePlan?patient=${patient}`).set(bearer);
    expect(plans.status).toBe(200);
    expect(plans.body.entry).toHaveLength(1);
    // Registered for Tasks too, but not granted them in this token.
    expect((await request(service.url).get(`/fhir/Task?patient=${patient}`).set(bearer)).status).toBe(403);
    // Asking for nothing: everything it is registered for.
    const all = await token(await assertion());
    expect(all.body.scope).toBe('system/CarePlan.rs system/Task.rs');
  });

  it('refuses an assertion used twice, signed by another key, for another audience, from an unknown client', async () => {
    const signed = await assertion();
    expect((await token(signed)).status).toBe(200);
    const other = (await generateKeyPair('RS384')).privateKey;
    for (const [what, refused] of [
      ['used twice', signed],
      ['another key', await assertion({ key: other })],
      ['another audience', await assertion({ aud: `${service.url}/fhir` })],
      ['unknown client', await assertion({ iss: 'stranger' })],
    ] as const) {
      const res = await token(refused);
      expect({ what, status: res.status, error: res.body.error }).toEqual({
        what,
        status: 400,
        error: 'invalid_client',
      });
    }
    const unregistered = await token(await assertion(), 'system/MedicationRequest.rs');
    expect([unregistered.status, unregistered.body.error]).toEqual([400, 'invalid_scope']);
  });
});
