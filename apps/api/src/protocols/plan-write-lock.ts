import { randomUUID } from 'node:crypto';
import { OutcomeException } from '@kc/common';
import type { Redis } from 'ioredis';

const HOLD_MS = 30_000;
const WAIT_MS = 10_000;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * One writer at a time per plan (patient + protocol), across API replicas: a Redis lock held while a plan is read
 * and written. It replaces the conditional creates that would otherwise stop two concurrent $apply calls from
 * writing the plan twice, and which make Medplum run the transaction under SERIALIZABLE isolation with at most 8
 * entries. Held at most 30 s (a crashed holder frees it); a caller waits up to 10 s, then gets 503.
 */
export class PlanWriteLock {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async around<T>(key: string, work: () => Promise<T>): Promise<T> {
    const name = `${this.prefix}:plan-write:${key}`;
    const token = randomUUID();
    const deadline = Date.now() + WAIT_MS;
    while ((await this.redis.set(name, token, 'PX', HOLD_MS, 'NX')) !== 'OK') {
      if (Date.now() > deadline)
        throw new OutcomeException(503, 'transient', 'This plan is being written by another request; try again');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    try {
      return await work();
    } finally {
      await this.redis.eval(RELEASE, 1, name, token).catch(() => undefined);
    }
  }
}
