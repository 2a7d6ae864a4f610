import { SignJWT } from 'jose';
import { DEV_JWT_SECRET, mintToken, TokenVerifier } from './token-verifier';

const SECRET = 'a-test-secret-of-at-least-32-characters!';

describe('TokenVerifier (bearer JWTs)', () => {
  const verifier = new TokenVerifier({ jwtSecret: SECRET, issuer: 'https://idp.test', audience: 'kc' });
  const mint = (claims: Parameters<typeof mintToken>[0], options: Parameters<typeof mintToken>[1] = {}) =>
    mintToken(claims, { secret: SECRET, issuer: 'https://idp.test', audience: 'kc', ...options });

  it('accepts a valid token and reads the caller from it, keeping known roles only', async () => {
    const token = await mint({
      sub: 'u1',
      roles: ['clinician', 'superuser' as 'admin'],
      fhirUser: 'Practitioner/1',
      name: 'Dr A',
    });
    expect(await verifier.verify(token)).toEqual({
      id: 'u1',
      roles: ['clinician'],
      fhirUser: 'Practitioner/1',
      display: 'Dr A',
    });
  });

  it('takes a single `role` claim too', async () => {
    const token = await new SignJWT({ role: 'integration' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('ehr')
      .setIssuer('https://idp.test')
      .setAudience('kc')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
    expect((await verifier.verify(token))?.roles).toEqual(['integration']);
  });

  it('refuses expired tokens, another secret, issuer or audience, and tokens without a subject', async () => {
    expect(await verifier.verify(await mint({ sub: 'u', roles: ['admin'] }, { expiresIn: '-1m' }))).toBeUndefined();
    expect(
      await verifier.verify(await mint({ sub: 'u', roles: ['admin'] }, { secret: DEV_JWT_SECRET })),
    ).toBeUndefined();
    expect(
      await verifier.verify(await mint({ sub: 'u', roles: ['admin'] }, { issuer: 'https://evil' })),
    ).toBeUndefined();
    expect(await verifier.verify(await mint({ sub: 'u', roles: ['admin'] }, { audience: 'other' }))).toBeUndefined();
    const noSubject = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://idp.test')
      .setAudience('kc')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
    expect(await verifier.verify(noSubject)).toBeUndefined();
  });

  it('refuses garbage, unsigned and tampered tokens without throwing', async () => {
    const token = await mint({ sub: 'u', roles: ['clinician'] });
    const [header, , signature] = token.split('.');
    const payload = Buffer.from(
      JSON.stringify({ sub: 'u', roles: ['admin'], iss: 'https://idp.test', aud: 'kc' }),
    ).toString('base64url');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
    for (const bad of ['', 'abc', 'a.b.c', `${header}.${payload}.${signature}`, none])
      expect(await verifier.verify(bad)).toBeUndefined();
  });

  it('uses the development secret only when neither a secret nor a JWKS is configured', async () => {
    expect(TokenVerifier.usesDevSecret({})).toBe(true);
    expect(TokenVerifier.usesDevSecret({ jwtSecret: SECRET })).toBe(false);
    expect(TokenVerifier.usesDevSecret({ jwksUrl: 'https://idp.test/jwks' })).toBe(false);
    const dev = new TokenVerifier({});
    expect((await dev.verify(await mintToken({ sub: 'u', roles: ['admin'] })))?.id).toBe('u');
  });

  it('refuses tokens that never expire, live longer than the configured maximum or are issued in the future', async () => {
    const key = new TextEncoder().encode(SECRET);
    const base = () =>
      new SignJWT({ roles: ['admin'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('u')
        .setIssuer('https://idp.test')
        .setAudience('kc');
    const nowS = Math.floor(Date.now() / 1000);
    expect(await verifier.verify(await base().setIssuedAt().sign(key))).toBeUndefined();
    expect(await verifier.verify(await base().setIssuedAt().setExpirationTime('25h').sign(key))).toBeUndefined();
    expect(await verifier.verify(await base().setExpirationTime('25h').sign(key))).toBeUndefined();
    expect(
      await verifier.verify(
        await base()
          .setIssuedAt(nowS + 3600)
          .setExpirationTime(nowS + 7200)
          .sign(key),
      ),
    ).toBeUndefined();
    expect(await verifier.verify(await base().setIssuedAt().setExpirationTime('23h').sign(key))).toBeDefined();
    const strict = new TokenVerifier({
      jwtSecret: SECRET,
      issuer: 'https://idp.test',
      audience: 'kc',
      maxTokenLifetimeSeconds: 600,
    });
    expect(await strict.verify(await base().setIssuedAt().setExpirationTime('1h').sign(key))).toBeUndefined();
    expect(await strict.verify(await base().setIssuedAt().setExpirationTime('5m').sign(key))).toBeDefined();
  });
});
