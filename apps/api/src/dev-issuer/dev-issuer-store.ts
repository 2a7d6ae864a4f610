import { createHash } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type JWK, type KeyLike } from 'jose';
import type { Redis } from 'ioredis';

/** The dev issuer's signing key: the private key to sign with, and its public JWK (with kid) for the JWKS. */
export interface SigningKey {
  privateKey: KeyLike;
  jwk: JWK;
}

/**
 * The development issuer's state, in Redis and shared by every API replica: its signing key (so a token one replica
 * signs verifies on another, and JWKS answers the same whichever replica serves it), the one-time authorization
 * codes and the rotating refresh tokens (a sign-in on one replica refreshes on another, and survives an API restart).
 * Codes and tokens are kept under their SHA-256 (a Redis dump holds no usable one), each expiring with what it
 * grants, and taken with GETDEL: one use, whichever replica asks first.
 */
export class DevIssuerStore {
  /** The last key read, by its stored JSON: imported once, not at every sign. */
  private cached?: { stored: string; key: SigningKey };

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** The shared signing key; the first replica to ask makes it (SET NX: concurrent starts agree on one). */
  async signingKey(): Promise<SigningKey> {
    const name = this.key('signing-key');
    let stored = await this.redis.get(name);
    if (!stored) {
      await this.redis.set(name, JSON.stringify(await newPrivateJwk()), 'NX');
      stored = await this.redis.get(name);
      if (!stored) throw new Error('the dev issuer could not keep its signing key in Redis');
    }
    if (this.cached?.stored !== stored) this.cached = { stored, key: await toSigningKey(JSON.parse(stored) as JWK) };
    return this.cached.key;
  }

  put<T>(kind: 'code' | 'refresh', secret: string, value: T, untilMs: number): Promise<unknown> {
    return this.redis.set(this.key(`${kind}:${hash(secret)}`), JSON.stringify(value), 'PXAT', Math.ceil(untilMs));
  }

  /** The value kept under this secret, removed in the same step; undefined when unknown, used or expired. */
  async take<T>(kind: 'code' | 'refresh', secret: string): Promise<T | undefined> {
    if (!secret) return undefined;
    const value = await this.redis.getdel(this.key(`${kind}:${hash(secret)}`));
    return value ? (JSON.parse(value) as T) : undefined;
  }

  /**
   * True the first time `id` is seen (kept until `untilMs`), false after: a client assertion's `jti` used once, on
   * whichever replica.
   */
  async firstUse(kind: 'assertion', id: string, untilMs: number): Promise<boolean> {
    const key = this.key(`${kind}:${hash(id)}`);
    return (await this.redis.set(key, '1', 'PXAT', Math.ceil(untilMs), 'NX')) === 'OK';
  }

  /** An access token revoked (RFC 7009), kept by its hash until it expires: introspection answers it inactive. */
  revoke(token: string, untilMs: number): Promise<unknown> {
    return this.redis.set(this.key(`revoked:${hash(token)}`), '1', 'PXAT', Math.ceil(untilMs));
  }

  async isRevoked(token: string): Promise<boolean> {
    return (await this.redis.exists(this.key(`revoked:${hash(token)}`))) === 1;
  }

  private key(name: string): string {
    return `${this.prefix}:dev-issuer:${name}`;
  }
}

async function newPrivateJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return exportJWK(privateKey);
}

async function toSigningKey(privateJwk: JWK): Promise<SigningKey> {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = privateJwk;
  return {
    privateKey: (await importJWK(privateJwk, 'RS256')) as KeyLike,
    jwk: {
      ...publicJwk,
      kid: createHash('sha256').update(publicJwk.n!).digest('base64url').slice(0, 16),
      alg: 'RS256',
      use: 'sig',
    },
  };
}

function hash(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}
