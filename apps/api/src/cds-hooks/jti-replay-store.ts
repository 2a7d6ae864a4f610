import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Remembers which CDS client tokens (issuer + jti) were used, until they expire, so a token is accepted once by the
 * whole deployment and not once per API replica.
 */
export interface JtiReplayStore {
  /** True when this key was not used yet (and is now claimed until `untilMs`), false for a replay. */
  claim(key: string, untilMs: number, nowMs: number): Promise<boolean>;
}

/** Shared by every replica: SET NX with the token's own expiry, so Redis forgets it when the token could not pass. */
export class RedisJtiReplayStore implements JtiReplayStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async claim(key: string, untilMs: number): Promise<boolean> {
    // Hashed: a jti is the client's string, of any length and content.
    const id = createHash('sha256').update(key).digest('hex');
    const set = await this.redis.set(`${this.prefix}:cds-jti:${id}`, '1', 'PXAT', Math.ceil(untilMs), 'NX');
    return set === 'OK';
  }
}

/** One process only (unit specs, tools): bounded, forgets expired keys. */
export class MemoryJtiReplayStore implements JtiReplayStore {
  private readonly seen = new Map<string, number>();

  constructor(private readonly maxKeys = 100_000) {}

  claim(key: string, untilMs: number, nowMs: number): Promise<boolean> {
    for (const [k, expires] of this.seen) if (expires < nowMs) this.seen.delete(k);
    if (this.seen.has(key) || this.seen.size >= this.maxKeys) return Promise.resolve(false);
    this.seen.set(key, untilMs);
    return Promise.resolve(true);
  }
}
