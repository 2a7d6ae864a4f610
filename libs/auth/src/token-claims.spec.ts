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

describe('TokenVerifier: verified tokens are remembered until they expire', () => {
  const secret = 'remembered-secret';

  it('checks a token signature once; a later call checks only its time bounds, so it is refused once expired', async () => {
    const verifier = new TokenVerifier({ jwtSecret: secret });
    const checks = jest.spyOn(verifier as unknown as { verifySignedToken: () => unknown }, 'verifySignedToken');
    const token = await mintToken({ sub: 'c1', roles: ['clinician'] }, { secret, expiresIn: '10m' });
    const now = Date.now();
    expect((await verifier.verify(token, now))?.id).toBe('c1');
    expect((await verifier.verify(token, now + 5 * 60_000))?.id).toBe('c1');
    expect(checks).toHaveBeenCalledTimes(1);
    expect(await verifier.verify(token, now + 12 * 60_000)).toBeUndefined();
    expect(await verifier.verify(token, now - 5 * 60_000)).toBeUndefined(); // before it was issued
  });

  it('remembers only the exact token that verified: the same claims with another signature are refused', async () => {
    const verifier = new TokenVerifier({ jwtSecret: secret });
    const token = await mintToken({ sub: 'c1', roles: ['clinician'] }, { secret });
    expect((await verifier.verify(token))?.id).toBe('c1');
    const [header, payload] = token.split('.');
    const forged = `${header}.${payload}.${Buffer.from('not the signature').toString('base64url')}`;
    expect(await verifier.verify(forged)).toBeUndefined();
    const otherSecret = await mintToken({ sub: 'c1', roles: ['admin'] }, { secret: 'another-secret' });
    expect(await verifier.verify(otherSecret)).toBeUndefined();
    expect(await verifier.verify(otherSecret)).toBeUndefined();
  });
});
