import type { TokenIntrospectionConfig } from '@kc/config';
import { IntrospectionUnavailable, TokenIntrospection } from './token-introspection';
import { mintToken, TokenVerifier } from './token-verifier';

const SECRET = 'introspection-spec-secret';
const T0 = Date.parse('2027-03-02T10:00:00Z');
const seconds = (ms: number) => Math.floor(ms / 1000);

/** An authorization server's answers, by token, as `fetch` would bring them; and how often it was asked. */
function authorizationServer(answers: Map<string, unknown>) {
  const asked: string[] = [];
  const send = ((_url: string, init: RequestInit) => {
    const token = new URLSearchParams(init.body as string).get('token')!;
    asked.push(token);
    return Promise.resolve(
      new Response(JSON.stringify(answers.get(token) ?? { active: false }), {
        headers: { 'content-type': 'application/json' },
      }),
    );
  }) as typeof fetch;
  return { send, asked };
}

const config = (over: Partial<TokenIntrospectionConfig> = {}): TokenIntrospectionConfig => ({
  url: 'https://ehr.example/oauth2/introspect',
  cacheSeconds: 60,
  checkJwts: false,
  ...over,
});

describe('TokenVerifier with token introspection (RFC 7662)', () => {
  it('keeps an answer for the cache time, then asks again: a token revoked meanwhile is refused from then on', async () => {
    const answers = new Map<string, unknown>([
      [
        'opaque',
        { active: true, client_id: 'ehr', scope: 'system/Task.rs', roles: ['integration'], exp: seconds(T0) + 3600 },
      ],
    ]);
    const as = authorizationServer(answers);
    const verifier = new TokenVerifier({ jwtSecret: SECRET }, new TokenIntrospection(config(), { send: as.send }));
    expect(await verifier.verify('opaque', T0)).toMatchObject({ id: 'ehr', roles: ['integration'] });
    answers.set('opaque', { active: false });
    expect(await verifier.verify('opaque', T0 + 59_000)).toMatchObject({ id: 'ehr' });
    expect(as.asked).toEqual(['opaque']);
    expect(await verifier.verify('opaque', T0 + 60_000)).toBeUndefined();
    expect(as.asked).toEqual(['opaque', 'opaque']);
  });

  it('an active token with no expiry is good while the server says so, asked again after the cache time', async () => {
    const answers = new Map<string, unknown>([['opaque', { active: true, sub: 'u1', roles: ['clinician'] }]]);
    const as = authorizationServer(answers);
    const verifier = new TokenVerifier({ jwtSecret: SECRET }, new TokenIntrospection(config(), { send: as.send }));
    expect(await verifier.verify('opaque', T0)).toMatchObject({ id: 'u1' });
    expect(await verifier.verify('opaque', T0 + 61_000)).toMatchObject({ id: 'u1' });
    expect(as.asked).toHaveLength(2);
  });

  it('with TOKEN_INTROSPECTION_FOR=all a JWT is asked about after its signature: one revoked is refused', async () => {
    const jwt = await mintToken({ sub: 'dr-1', roles: ['clinician'] }, { secret: SECRET });
    const answers = new Map<string, unknown>([[jwt, { active: true }]]);
    const as = authorizationServer(answers);
    const all = new TokenVerifier(
      { jwtSecret: SECRET },
      new TokenIntrospection(config({ checkJwts: true, cacheSeconds: 0 }), { send: as.send }),
    );
    const now = Date.now();
    // The JWT's own claims stand (the answer only says whether it is active).
    expect(await all.verify(jwt, now)).toMatchObject({ id: 'dr-1', roles: ['clinician'] });
    answers.set(jwt, { active: false });
    expect(await all.verify(jwt, now + 1)).toBeUndefined();
    // Not asked at all with the default (opaque tokens only).
    const opaqueOnly = new TokenVerifier({ jwtSecret: SECRET }, new TokenIntrospection(config(), { send: as.send }));
    const before = as.asked.length;
    expect(await opaqueOnly.verify(jwt, now)).toMatchObject({ id: 'dr-1' });
    expect(as.asked).toHaveLength(before);
  });

  it("refuses an answer naming another audience than this service's, and a token that is no JWT when none is configured", async () => {
    const answers = new Map<string, unknown>([
      ['opaque', { active: true, sub: 'u1', aud: 'https://other.example', roles: ['clinician'] }],
    ]);
    const as = authorizationServer(answers);
    const verifier = new TokenVerifier(
      { jwtSecret: SECRET, audience: 'https://careplans.example' },
      new TokenIntrospection(config(), { send: as.send }),
    );
    expect(await verifier.verify('opaque', T0)).toBeUndefined();
    expect(await new TokenVerifier({ jwtSecret: SECRET }).verify('opaque', T0)).toBeUndefined();
  });

  it('cannot ask a server that is down, or that answers no RFC 7662 response: IntrospectionUnavailable', async () => {
    const down = (() => Promise.reject(new TypeError('fetch failed'))) as typeof fetch;
    await expect(new TokenIntrospection(config(), { send: down }).introspect('t')).rejects.toBeInstanceOf(
      IntrospectionUnavailable,
    );
    const odd = (() => Promise.resolve(new Response('<html>', { status: 200 }))) as typeof fetch;
    await expect(new TokenIntrospection(config(), { send: odd }).introspect('t')).rejects.toThrow(
      /no RFC 7662 response/,
    );
    const refusing = (() => Promise.resolve(new Response('', { status: 401 }))) as typeof fetch;
    await expect(new TokenIntrospection(config(), { send: refusing }).introspect('t')).rejects.toThrow(/answered 401/);
  });
});
