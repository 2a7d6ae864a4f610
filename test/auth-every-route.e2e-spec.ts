import request from 'supertest';
import { SignJWT } from 'jose';
import { mintToken } from '@kc/auth';
import { concretePath, registeredRoutes, type Route } from './support/routes';
import { startTestService, TEST_JWT_SECRET, type TestService } from './support/test-service';

/**
 * Every route the running Nest app registers, asked without a token, with tokens that must not pass (no role, no
 * exp, a year-long lifetime, issued in the future): only the public allow-list answers; everything else is 401/403.
 * Routes come from the app itself, so an endpoint added later is checked without touching this test.
 */

/** Public by design: health and metadata, the login flow, the page shell, CDS Hooks (own client JWT guard). */
const PUBLIC = [
  /^\/health(\/|$)/,
  /^\/metrics$/,
  /^\/fhir\/metadata$/,
  /^\/fhir\/\.well-known\//,
  /^\/dev-issuer\//,
  /^\/ui(\/|$)/,
  /^\/cds-services(\/|$)/,
  /^\/webhooks\/fhir(\/|$)/, // HMAC signature instead of a user token
  /^\/docs(\/|-json$|-yaml$|$)/, // the OpenAPI description of the API
];

function routesToCheck(service: TestService): { method: Route['method']; path: string }[] {
  // A concrete path for parameters: an id that exists nowhere.
  return registeredRoutes(service.app).map((r) => ({ method: r.method, path: concretePath(r.path, () => 'probe-1') }));
}

const secret = new TextEncoder().encode(TEST_JWT_SECRET);
const now = () => Math.floor(Date.now() / 1000);

describe('authentication and roles on every route', () => {
  let service: TestService;
  let routes: { method: Route['method']; path: string }[];
  const badTokens: Record<string, string> = {};

  beforeAll(async () => {
    service = await startTestService();
    routes = routesToCheck(service);
    badTokens['no role'] = await mintToken({ sub: 'nobody', roles: [] }, { secret: TEST_JWT_SECRET });
    badTokens['no exp'] = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('forever')
      .setIssuedAt()
      .sign(secret);
    badTokens['a year long'] = await mintToken(
      { sub: 'long', roles: ['admin'] },
      { secret: TEST_JWT_SECRET, expiresIn: '365d' },
    );
    badTokens['issued tomorrow'] = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('future')
      .setIssuedAt(now() + 86_400)
      .setExpirationTime(now() + 2 * 86_400)
      .sign(secret);
  });
  afterAll(() => service?.stop());

  it('finds the API routes to check', () => {
    const paths = routes.map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        'GET /protocols',
        'GET /worklist',
        'POST /tasks/probe-1/$approve',
        'POST /events/infusion-completed',
        'GET /fhir/probe-1',
      ]),
    );
    expect(routes.length).toBeGreaterThan(25);
  });

  it('every non-public route refuses a missing token and every token it must not accept', async () => {
    const guarded = routes.filter((r) => !PUBLIC.some((p) => p.test(r.path)));
    expect(guarded.length).toBeGreaterThan(15);
    const wrong: string[] = [];
    for (const route of guarded) {
      const call = (authorization?: string) => {
        const req = request(service.url)[route.method](route.path).set('Content-Type', 'application/json');
        return (authorization ? req.set('Authorization', authorization) : req).send(
          route.method === 'get' ? undefined : {},
        );
      };
      // Unknown paths answer 404 to anyone (the catch-all); they serve nothing.
      if (route.path === '/no-such-endpoint') {
        const res = await call();
        if (res.status !== 404) wrong.push(`${route.method} ${route.path}: ${res.status}`);
        continue;
      }
      const anonymous = await call();
      if (anonymous.status !== 401) wrong.push(`${route.method} ${route.path} without a token: ${anonymous.status}`);
      for (const [what, token] of Object.entries(badTokens)) {
        const res = await call(`Bearer ${token}`);
        const expected = what === 'no role' ? [403] : [401];
        if (!expected.includes(res.status)) wrong.push(`${route.method} ${route.path} with ${what}: ${res.status}`);
        if (res.body?.resourceType !== 'OperationOutcome') wrong.push(`${route.path} ${what}: not an OperationOutcome`);
      }
    }
    expect(wrong).toEqual([]);
  });

  // Since session 60: a route that names no FhirScopes would let a scoped token through by its role alone.
  it('every non-public route refuses a token of every role whose SMART scopes grant none of what it does', async () => {
    const scoped = `Bearer ${await mintToken(
      { sub: 'scoped', roles: ['clinician', 'integration'], scope: 'openid user/Basic.read' },
      { secret: TEST_JWT_SECRET },
    )}`;
    const guarded = registeredRoutes(service.app)
      .map((r) => ({ method: r.method, path: concretePath(r.path, (p) => (p === 'type' ? 'Task' : 'probe-1')) }))
      .filter((r) => !PUBLIC.some((p) => p.test(r.path)) && r.path !== '/no-such-endpoint');
    const passed: string[] = [];
    for (const route of guarded) {
      const call = request(service.url)[route.method](route.path);
      const res = await call.set('Authorization', scoped).send(route.method === 'get' ? undefined : {});
      if (res.status !== 403 || res.body?.resourceType !== 'OperationOutcome')
        passed.push(`${route.method} ${route.path}: ${res.status}`);
    }
    expect(passed).toEqual([]);
  });
});
