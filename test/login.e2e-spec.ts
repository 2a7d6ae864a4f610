import * as fs from 'node:fs';
import request from 'supertest';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { Browser } from 'playwright-core';
import type { Practitioner, Provenance } from '@medplum/fhirtypes';
import { ConfigError, loadConfig } from '@kc/config';
import { mintToken } from '@kc/auth';
import { startService } from '../service/start-service';
import { DEV_ISSUER, devSignIn, enrolNamedPatient, launchChromium, pkce, signInOnPage } from './support/clinician';
import { startTestService, type TestService } from './support/test-service';

describe('clinician sign-in: dev OpenID issuer, OIDC code + PKCE, SMART launch', () => {
  let service: TestService;
  let browser: Browser;

  beforeAll(async () => {
    service = await startTestService({ oidc: DEV_ISSUER });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await service?.stop();
  });

  it('publishes OpenID discovery and a JWKS, and the API trusts it automatically', async () => {
    const issuer = `${service.url}/dev-issuer`;
    expect(service.config.oidc.issuer).toBe(issuer);
    expect(service.config.auth.trustedIssuers).toContainEqual({ issuer, jwksUrl: `${issuer}/jwks` });
    const discovery = await request(service.url).get('/dev-issuer/.well-known/openid-configuration').expect(200);
    expect(discovery.body).toMatchObject({
      issuer,
      authorization_endpoint: `${issuer}/authorize`,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      code_challenge_methods_supported: ['S256'],
    });
    const jwks = await request(service.url).get('/dev-issuer/jwks').expect(200);
    expect(jwks.body.keys).toHaveLength(1);
    expect(jwks.body.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(jwks.body.keys[0].d).toBeUndefined();
    const ui = await request(service.url).get('/ui/config').expect(200);
    expect(ui.body).toMatchObject({ issuer, clientId: 'ketamine-careplans-ui', devIssuer: true });
  });

  it('authorization code + PKCE over HTTP: tokens signed by its key, fhirUser a named Practitioner, decisions attributed', async () => {
    const tokens = await devSignIn(service, 'clinician');
    expect(tokens).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
    const jwks = createRemoteJWKSet(new URL(`${service.url}/dev-issuer/jwks`));
    const id = await jwtVerify(tokens.id_token as string, jwks, { issuer: `${service.url}/dev-issuer` });
    expect(id.payload).toMatchObject({ sub: 'clinician', fhirUser: 'Practitioner/dev-clinician', nonce: 'nonce-123' });
    const access = decodeJwt(tokens.access_token as string);
    expect(access).toMatchObject({ roles: ['clinician'], fhirUser: 'Practitioner/dev-clinician' });
    const practitioner = await service.fhir.read<Practitioner>('Practitioner', 'dev-clinician');
    expect(practitioner.name?.[0].text).toBe('Dr Ada Lovelace');

    // The API accepts the token, and the Provenance of a decision names the Practitioner.
    const auth = { Authorization: `Bearer ${tokens.access_token as string}` };
    const enrolment = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Lena',
      family: 'Ortiz',
      birthDate: '1980-05-02',
    });
    const list = await request(service.url)
      .get('/worklist')
      .query({ patient: enrolment.patientId })
      .set(auth)
      .expect(200);
    const item = (list.body as { items: { id: string; versionId: string; kind: string }[] }).items[0];
    await request(service.url)
      .post(`/tasks/${item.id}/$approve`)
      .set(auth)
      .send({ versionId: item.versionId })
      .expect(200);
    // Keyed on the version the clinician decided on.
    const [provenance] = await service.fhir.searchAll<Provenance>('Provenance', {
      _tag: `https://ketamine-careplans.example/fhir/NamingSystem/decision-key|Task/${item.id}/_history/${item.versionId}`,
    });
    expect(provenance.agent[0].who).toMatchObject({
      reference: 'Practitioner/dev-clinician',
      display: 'Dr Ada Lovelace',
    });
    // The HS256 development tokens still work next to it.
    await request(service.url).get('/worklist').set(service.as('clinician')).expect(200);
    // The admin demo user is an admin.
    const admin = await devSignIn(service, 'admin');
    await request(service.url)
      .get('/operations/dead-letters')
      .set({ Authorization: `Bearer ${admin.access_token as string}` })
      .expect(200);
  });

  it('refuses a wrong PKCE verifier, a reused code, a missing challenge, a foreign redirect and forged tokens', async () => {
    const { verifier, challenge } = pkce();
    const params = {
      response_type: 'code',
      client_id: 'ketamine-careplans-ui',
      redirect_uri: `${service.url}/ui`,
      scope: 'openid',
      state: 's',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    };
    const redirect = await request(service.url)
      .post('/dev-issuer/authorize')
      .type('form')
      .send({ ...params, user: 'clinician' })
      .expect(303);
    const code = new URL(String(redirect.headers.location)).searchParams.get('code')!;
    const exchange = (code_verifier: string) =>
      request(service.url).post('/dev-issuer/token').type('form').send({
        grant_type: 'authorization_code',
        code,
        redirect_uri: params.redirect_uri,
        client_id: params.client_id,
        code_verifier,
      });
    const wrong = await exchange(pkce().verifier).expect(400);
    expect(wrong.body.error).toBe('invalid_grant');
    // A failed attempt burns the code too.
    expect((await exchange(verifier).expect(400)).body.error).toBe('invalid_grant');

    await request(service.url)
      .get('/dev-issuer/authorize')
      .query({ ...params, code_challenge: undefined, code_challenge_method: undefined })
      .expect(400);
    await request(service.url)
      .get('/dev-issuer/authorize')
      .query({ ...params, redirect_uri: 'https://evil.example/cb' })
      .expect(400);
    await request(service.url)
      .get('/dev-issuer/authorize')
      .query({ ...params, client_id: 'someone-else' })
      .expect(400);
    // A token claiming the dev issuer but signed with another key: 401.
    const forged = await mintToken(
      { sub: 'x', roles: ['clinician'] },
      { secret: 'another-secret-entirely-123456', issuer: service.config.oidc.issuer },
    );
    await request(service.url)
      .get('/worklist')
      .set({ Authorization: `Bearer ${forged}` })
      .expect(401);
  });

  it('refresh tokens: a new access token without the user, each refresh token used once, for the same client', async () => {
    const discovery = await request(service.url).get('/dev-issuer/.well-known/openid-configuration').expect(200);
    // Client credentials for SMART backend services (DEV_ISSUER_CLIENTS), since session 60.
    expect(discovery.body.grant_types_supported).toEqual(['authorization_code', 'refresh_token', 'client_credentials']);
    const first = await devSignIn(service, 'clinician');
    const refresh = (refresh_token: unknown, client_id = service.config.oidc.clientId) =>
      request(service.url).post('/dev-issuer/token').type('form').send({
        grant_type: 'refresh_token',
        refresh_token,
        client_id,
      });
    const renewed = await refresh(first.refresh_token).expect(200);
    expect(renewed.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
    expect(decodeJwt(renewed.body.access_token as string)).toMatchObject({
      sub: 'clinician',
      fhirUser: 'Practitioner/dev-clinician',
    });
    expect(renewed.body.refresh_token).not.toBe(first.refresh_token);
    await request(service.url)
      .get('/worklist')
      .set({ Authorization: `Bearer ${renewed.body.access_token as string}` })
      .expect(200);
    // Rotation: the first refresh token is spent; the second is refused to another client (and spent by the try).
    expect((await refresh(first.refresh_token).expect(400)).body.error).toBe('invalid_grant');
    expect((await refresh(renewed.body.refresh_token, 'another-client').expect(400)).body.error).toBe('invalid_grant');
    expect((await refresh(renewed.body.refresh_token).expect(400)).body.error).toBe('invalid_grant');
    expect((await refresh('made-up').expect(400)).body.error).toBe('invalid_grant');
  });

  it('SMART on FHIR: discovery on the FHIR base, standalone launch with iss and aud, EHR launch with a patient', async () => {
    const fhirBase = `${service.url}/fhir`;
    const smart = await request(service.url).get('/fhir/.well-known/smart-configuration').expect(200);
    expect(smart.body.capabilities).toEqual(
      expect.arrayContaining(['launch-standalone', 'launch-ehr', 'client-public']),
    );
    expect(smart.body.authorization_endpoint).toBe(`${service.url}/dev-issuer/authorize`);
    const standalone = await devSignIn(service, 'clinician', {
      aud: fhirBase,
      scope: 'openid fhirUser launch/patient',
    });
    expect(decodeJwt(standalone.access_token as string).fhirUser).toBe('Practitioner/dev-clinician');
    const ehr = await devSignIn(service, 'clinician', {
      aud: fhirBase,
      scope: 'openid fhirUser launch',
      launch: 'patient-abc',
    });
    expect(ehr.patient).toBe('abc');
    // aud must be this service.
    await request(service.url)
      .get('/dev-issuer/authorize')
      .query({
        response_type: 'code',
        client_id: 'ketamine-careplans-ui',
        redirect_uri: `${service.url}/ui`,
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
        aud: 'https://other-ehr.example/fhir',
      })
      .expect(400);
  });

  it('signs in in Chromium: Sign in -> dev issuer page -> back with a code, exchanged with the PKCE verifier', async () => {
    const page = await browser.newPage();
    await signInOnPage(page, service, 'clinician');
    expect(page.url()).toBe(`${service.url}/ui`);
    expect(await page.textContent('#who')).toBe('Signed in as Dr Ada Lovelace');
    expect(await page.getAttribute('#who', 'title')).toBe('Practitioner/dev-clinician');
    expect(await page.textContent('#message')).toMatch(/\d+ tasks? awaiting approval/);
    const stored = await page.evaluate(
      () => JSON.parse(sessionStorage.getItem('kc-session') ?? '{}') as { accessToken: string; refreshToken: string },
    );
    expect(decodeJwt(stored.accessToken).iss).toBe(`${service.url}/dev-issuer`);
    expect(await page.evaluate(() => sessionStorage.getItem('kc-login'))).toBeNull();
    fs.mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/signed-in.png' });
    expect(fs.statSync('test-results/signed-in.png').size).toBeGreaterThan(1000);
    await page.click('#sign-out');
    await page.waitForSelector('#sign-in:not([hidden])');
    // Signing out revoked the session at the issuer (RFC 7009): its refresh token gets no new access token, and its
    // access token is no longer active for an API that asks (TOKEN_INTROSPECTION_FOR=all).
    const refreshed = await request(service.url).post('/dev-issuer/token').type('form').send({
      grant_type: 'refresh_token',
      refresh_token: stored.refreshToken,
      client_id: 'ketamine-careplans-ui',
    });
    expect(refreshed.status).toBe(400);
    expect(refreshed.body.error).toBe('invalid_grant');
    const asked = await request(service.url)
      .post('/dev-issuer/introspect')
      .type('form')
      .send({ token: stored.accessToken });
    expect(asked.body).toEqual({ active: false });
    await page.close();
  }, 60_000);

  it('SMART standalone launch in Chromium: /ui?iss=<FHIR base> signs in through the SMART configuration', async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/ui?iss=${encodeURIComponent(`${service.url}/fhir`)}`);
    await page.waitForURL(/\/dev-issuer\/authorize/);
    const authorize = new URL(page.url());
    expect(authorize.searchParams.get('aud')).toBe(`${service.url}/fhir`);
    expect(authorize.searchParams.get('scope')).toContain('launch/patient');
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    await page.click('#sign-in');
    await page.waitForSelector('#worklist:not([hidden])');
    expect(await page.getAttribute('#who', 'title')).toBe('Practitioner/dev-clinician');
    await page.close();
  }, 60_000);

  it('EHR launch in Chromium opens the launch patient', async () => {
    const enrolment = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Maya',
      family: 'Quinn',
      birthDate: '1975-03-09',
    });
    const page = await browser.newPage();
    await page.goto(
      `${service.url}/ui?iss=${encodeURIComponent(`${service.url}/fhir`)}&launch=patient-${enrolment.patientId}`,
    );
    await page.waitForURL(/\/dev-issuer\/authorize/);
    expect(new URL(page.url()).searchParams.get('launch')).toBe(`patient-${enrolment.patientId}`);
    await page.click('#sign-in');
    await page.waitForSelector('#patient-view:not([hidden])');
    expect(await page.textContent('#patient-heading')).toMatch(/^Maya Quinn, \d+ years$/);
    await page.close();
  }, 60_000);

  it('the page keeps a clinician signed in past the access token: refreshed before a call, after a 401, at reload', async () => {
    const shortLived = await startTestService({ oidc: { ...DEV_ISSUER, devTokenSeconds: 2 } });
    const page = await browser.newPage();
    try {
      await signInOnPage(page, shortLived);
      const stored = () =>
        page.evaluate(() => JSON.parse(sessionStorage.getItem('kc-session') ?? 'null') as Record<string, unknown>);
      const first = await stored();
      expect(first.refreshToken).toEqual(expect.any(String));
      await page.waitForFunction(() => Date.now() > JSON.parse(sessionStorage.getItem('kc-session')!).expiresAt);
      // Expired: the reload refreshes and shows the worklist, not the sign-in button.
      await page.reload();
      await page.waitForSelector('#worklist:not([hidden])');
      expect(await page.isHidden('#sign-in')).toBe(true);
      const second = await stored();
      expect(second.accessToken).not.toBe(first.accessToken);
      expect(second.refreshToken).not.toBe(first.refreshToken);
      // A token the API refuses (401) is refreshed once and the call made again.
      await page.evaluate(() => {
        const current = JSON.parse(sessionStorage.getItem('kc-session')!);
        sessionStorage.setItem(
          'kc-session',
          JSON.stringify({ ...current, accessToken: 'not-a-token', expiresAt: Date.now() + 3600_000 }),
        );
      });
      await page.reload();
      await page.waitForSelector('#worklist:not([hidden])');
      expect((await stored()).accessToken).not.toBe('not-a-token');
      // A refresh token the issuer no longer knows (a restart) ends the session: sign in again.
      await page.evaluate(() => {
        const current = JSON.parse(sessionStorage.getItem('kc-session')!);
        sessionStorage.setItem(
          'kc-session',
          JSON.stringify({ ...current, accessToken: 'not-a-token', refreshToken: 'forgotten' }),
        );
      });
      await page.reload();
      await page.waitForSelector('#message.error');
      expect(await page.textContent('#message')).toMatch(/token is missing, invalid or expired/);
      expect(await page.isVisible('#sign-in')).toBe(true);
    } finally {
      await page.close();
      await shortLived.stop();
    }
  }, 60_000);

  it('a page with a foreign iss is refused before any redirect', async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/ui?iss=${encodeURIComponent('https://ehr.example/fhir')}`);
    await page.waitForSelector('#message.error');
    expect(await page.textContent('#message')).toMatch(/Unknown iss/);
    await page.close();
  });
});

describe('the dev issuer is refused in production and off when not configured', () => {
  it('NODE_ENV=production with DEV_ISSUER=true stops at startup; production defaults to off', async () => {
    expect(() => loadConfig({ NODE_ENV: 'production', DEV_ISSUER: 'true', JWT_SECRET: 'x'.repeat(32) })).toThrow(
      ConfigError,
    );
    expect(() => loadConfig({ NODE_ENV: 'production', DEV_ISSUER: 'true' })).toThrow(
      /refused with NODE_ENV=production/,
    );
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).oidc.devIssuer).toBe(false);
    expect(loadConfig({}).oidc.devIssuer).toBe(true);
    expect(() => loadConfig({ DEV_ISSUER: 'maybe' })).toThrow(/DEV_ISSUER must be true or false/);
    expect(() => loadConfig({ OIDC_ISSUER: 'https://login.clinic.example' })).toThrow(/JWT_JWKS_URL/);
    const external = loadConfig({
      OIDC_ISSUER: 'https://login.clinic.example/',
      JWT_JWKS_URL: 'https://login.clinic.example/jwks',
    });
    expect(external.oidc).toMatchObject({ issuer: 'https://login.clinic.example', devIssuer: false });
    expect(external.auth.issuer).toBe('https://login.clinic.example');
    // The composition root refuses it too, whatever config it is handed.
    const config = loadConfig({ FHIR_BASE_URL: 'http://127.0.0.1:9/fhir' });
    await expect(
      startService(
        { ...config, port: 0, production: true, oidc: { ...config.oidc, devIssuer: true } },
        { logger: false },
      ),
    ).rejects.toThrow(/refused in production/);
  });

  it('with the dev issuer off its endpoints and SMART discovery answer 404', async () => {
    const service = await startTestService();
    try {
      await request(service.url).get('/dev-issuer/.well-known/openid-configuration').expect(404);
      await request(service.url).get('/dev-issuer/authorize').expect(404);
      await request(service.url).get('/fhir/.well-known/smart-configuration').expect(404);
      const ui = await request(service.url).get('/ui/config').expect(200);
      expect(ui.body.issuer).toBeNull();
    } finally {
      await service.stop();
    }
  }, 30_000);
});
