import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { exportJWK, generateKeyPair } from 'jose';
import { CdsAuthError, CdsClientVerifier, mintCdsClientJwt } from './cds-client-auth';
import { RedisJtiReplayStore } from './jti-replay-store';

const SECRET = 's'.repeat(40);
const ISSUER = 'https://ehr.example';
const AUD = 'https://cds.example/cds-services/ketamine-order-check';

describe('CDS client JWT verification', () => {
  const verifier = () => new CdsClientVerifier({ [ISSUER]: { secret: SECRET } });

  it('accepts a fresh token for this endpoint once, with or without a trailing slash in aud', async () => {
    const v = verifier();
    const token = await mintCdsClientJwt({ issuer: ISSUER, audience: AUD, secret: SECRET, tenant: 't1' });
    await expect(v.verify(token, AUD)).resolves.toMatchObject({ issuer: ISSUER, tenant: 't1' });
    await expect(v.verify(token, AUD)).rejects.toThrow('jti was already used');
    const slashed = await mintCdsClientJwt({ issuer: ISSUER, audience: `${AUD}/`, secret: SECRET });
    await expect(v.verify(slashed, AUD)).resolves.toBeDefined();
  });

  it('refuses tokens without jti, too old by iat, or when no client is configured', async () => {
    const { SignJWT } = await import('jose');
    const noJti = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUD)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(SECRET));
    await expect(verifier().verify(noJti, AUD)).rejects.toThrow(/jti/);
    const now = Date.now();
    const old = await mintCdsClientJwt({
      issuer: ISSUER,
      audience: AUD,
      secret: SECRET,
      iat: Math.floor(now / 1000) - 600,
      expiresInSeconds: 3600,
    });
    await expect(verifier().verify(old, AUD, now)).rejects.toThrow(/iat/);
    await expect(new CdsClientVerifier({}).verify(old, AUD)).rejects.toThrow(CdsAuthError);
  });

  it('forgets a jti once its token could no longer pass anyway', async () => {
    const v = verifier();
    const now = Date.now();
    const token = await mintCdsClientJwt({ issuer: ISSUER, audience: AUD, secret: SECRET, jti: 'same' });
    await v.verify(token, AUD, now);
    const later = now + 10 * 60_000;
    const again = await mintCdsClientJwt({
      issuer: ISSUER,
      audience: AUD,
      secret: SECRET,
      jti: 'same',
      iat: Math.floor(later / 1000),
    });
    await expect(v.verify(again, AUD, later)).resolves.toBeDefined();
  });

  it('a JWKS client signs with its private key (ES384); HMAC tokens are refused for it', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES384');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES384' };
    const server = await import('node:http').then((http) =>
      http.createServer((_req, res) => res.end(JSON.stringify({ keys: [jwk] }))),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`;
      const v = new CdsClientVerifier({ [ISSUER]: { jwksUrl: url } });
      const privateJwk = { ...(await exportJWK(privateKey)), kid: 'k1', alg: 'ES384' };
      await expect(
        v.verify(await mintCdsClientJwt({ issuer: ISSUER, audience: AUD, privateJwk }), AUD),
      ).resolves.toBeDefined();
      await expect(
        v.verify(await mintCdsClientJwt({ issuer: ISSUER, audience: AUD, secret: SECRET }), AUD),
      ).rejects.toThrow(/algorithm not allowed/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('CDS client JWT replay across replicas (real Redis)', () => {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const prefix = `kc-test-jti-${randomUUID()}`;
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('a token used on one API replica is refused on another, and Redis forgets it when the token expires', async () => {
    const clients = { [ISSUER]: { secret: SECRET } };
    const replicaA = new CdsClientVerifier(clients, new RedisJtiReplayStore(redis, prefix));
    const replicaB = new CdsClientVerifier(clients, new RedisJtiReplayStore(redis, prefix));
    const token = await mintCdsClientJwt({ issuer: ISSUER, audience: AUD, secret: SECRET });
    await expect(replicaA.verify(token, AUD)).resolves.toMatchObject({ issuer: ISSUER });
    await expect(replicaB.verify(token, AUD)).rejects.toThrow('jti was already used');
    const [key] = await redis.keys(`${prefix}:cds-jti:*`);
    const ttlMs = await redis.pttl(key);
    expect(ttlMs).toBeGreaterThan(0);
    expect(ttlMs).toBeLessThanOrEqual(6 * 60_000);
  });
});
