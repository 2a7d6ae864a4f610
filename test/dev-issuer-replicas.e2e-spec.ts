import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { decodeJwt } from 'jose';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { devSignIn } from './support/clinician';
import { startTestService, type TestService } from './support/test-service';

/**
 * The dev issuer behind a load balancer: two API replicas (one FHIR server, one Redis) behind a round-robin proxy
 * at PUBLIC_URL, as a clinic would run them. A sign-in, its code exchange, the API calls and the refreshes land on
 * whichever replica the proxy picks, and a restart of every replica keeps the clinicians signed in: the issuer's
 * key, codes and refresh tokens are shared in Redis, not held by one process.
 */
describe('dev issuer: several replicas behind a load balancer, and restarts', () => {
  let fhir: FhirSandbox;
  let proxy: http.Server;
  let publicUrl: string;
  /** The replicas the proxy sends to, in turn, and which one answered each request (by replica name). */
  const replicas = new Map<string, TestService>();
  const servedBy: { path: string; replica: string }[] = [];
  let turn = 0;
  const queuePrefix = `kc-test-replicas-${randomUUID().slice(0, 8)}`;

  const startReplica = (name: string, port = 0) =>
    startTestService({
      port,
      fhirBaseUrl: fhir.baseUrl,
      queuePrefix,
      publicUrl,
      oidc: {
        devIssuer: true,
        clientId: 'ketamine-careplans-ui',
        scope: 'openid fhirUser profile',
        devTokenSeconds: 3600,
      },
    }).then((service) => (replicas.set(name, service), service));

  beforeAll(async () => {
    fhir = await startFhirSandbox();
    proxy = http.createServer((req, res) => {
      const live = [...replicas];
      const [name, target] = live[turn++ % live.length];
      servedBy.push({ path: req.url!.split('?')[0], replica: name });
      const upstream = http.request(
        new URL(req.url!, target.url),
        { method: req.method, headers: { ...req.headers, host: new URL(target.url).host } },
        (answer) => {
          res.writeHead(answer.statusCode!, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.writeHead(502).end());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    publicUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    await startReplica('a');
    await startReplica('b');
  }, 60_000);

  afterAll(async () => {
    for (const replica of replicas.values()) await replica.stop();
    await new Promise((resolve) => proxy?.close(resolve));
    await fhir?.close();
  });

  const viaProxy = () => ({ ...replicas.get('a')!, url: publicUrl });
  const refresh = (refreshToken: unknown) =>
    request(publicUrl).post('/dev-issuer/token').type('form').send({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: 'ketamine-careplans-ui',
    });
  const worklistWith = (accessToken: unknown) =>
    request(publicUrl)
      .get('/worklist')
      .set({ Authorization: `Bearer ${String(accessToken)}` });

  it('signs in, calls the API and refreshes whichever replica answers each step', async () => {
    servedBy.length = 0;
    const tokens = await devSignIn(viaProxy(), 'clinician');
    // The page, the sign-in (code issued) and the exchange went to different replicas in turn.
    const steps = servedBy.map((s) => `${s.path}@${s.replica}`);
    expect(steps).toEqual(['/dev-issuer/authorize@a', '/dev-issuer/authorize@b', '/dev-issuer/token@a']);
    expect(decodeJwt(String(tokens.access_token))).toMatchObject({
      iss: `${publicUrl}/dev-issuer`,
      fhirUser: 'Practitioner/dev-clinician',
    });
    // Each replica verifies it (fetching the issuer's JWKS through the proxy, from either replica).
    for (const replica of replicas.values())
      await request(replica.url)
        .get('/worklist')
        .set({ Authorization: `Bearer ${String(tokens.access_token)}` })
        .expect(200);
    // Refresh tokens rotate across replicas: each used once, wherever it was issued.
    const first = await refresh(tokens.refresh_token).expect(200);
    const second = await refresh(first.body.refresh_token).expect(200);
    await worklistWith(second.body.access_token).expect(200);
    expect((await refresh(first.body.refresh_token).expect(400)).body.error).toBe('invalid_grant');
    // Every replica publishes the same one key.
    const kids = await Promise.all(
      [...replicas.values()].map(async (r) =>
        (await request(r.url).get('/dev-issuer/jwks').expect(200)).body.keys.map((k: { kid: string }) => k.kid),
      ),
    );
    expect(kids[0]).toHaveLength(1);
    expect(kids[1]).toEqual(kids[0]);
  });

  it('a restart of every replica keeps clinicians signed in: their access token verifies, their refresh token works', async () => {
    const tokens = await devSignIn(viaProxy(), 'clinician');
    const ports = [...replicas].map(([name, r]) => [name, Number(new URL(r.url).port)] as const);
    for (const replica of replicas.values()) await replica.stop();
    replicas.clear();
    for (const [name, port] of ports) await startReplica(name, port);

    await worklistWith(tokens.access_token).expect(200);
    await worklistWith(tokens.access_token).expect(200);
    const renewed = await refresh(tokens.refresh_token).expect(200);
    await worklistWith(renewed.body.access_token).expect(200);
  }, 60_000);
});
