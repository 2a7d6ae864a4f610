import type { ConnectionOptions, Queue } from 'bullmq';
import type { Redis, RedisOptions } from 'ioredis';
import type { AppConfig } from '@kc/config';

/** Where Redis is: the URL, and Sentinel when one is configured. */
export type RedisTarget = Pick<AppConfig, 'redisUrl' | 'redisSentinel' | 'redisTlsCa'> &
  Partial<Pick<AppConfig, 'redisCommandStacks'>>;

/**
 * ioredis options for every Redis client of the service (BullMQ's, the worklist index's, the sign-in store's), so
 * they all reach the same server the same way: `rediss://` connects with TLS (verified against the system's CAs, or
 * REDIS_TLS_CA_FILE's); with Sentinel, the clients ask the sentinels for the master and ask again after a failover
 * (the URL's user, password and database still apply), and `rediss://` means TLS to the sentinels and to the
 * servers they name.
 */
export function redisOptions(target: RedisTarget | string): RedisOptions {
  const { redisUrl, redisSentinel, redisTlsCa, redisCommandStacks } =
    typeof target === 'string'
      ? { redisUrl: target, redisSentinel: undefined, redisTlsCa: undefined, redisCommandStacks: false }
      : target;
  const url = new URL(redisUrl);
  const tls = url.protocol === 'rediss:' ? (redisTlsCa ? { ca: redisTlsCa } : {}) : undefined;
  const credentials: RedisOptions = {
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    ...(redisCommandStacks ? { showFriendlyErrorStack: true } : {}),
  };
  if (redisSentinel)
    return {
      ...credentials,
      sentinels: redisSentinel.sentinels,
      name: redisSentinel.name,
      sentinelPassword: redisSentinel.password,
      ...(tls && { tls, sentinelTLS: tls, enableTLSForSentinelMode: true }),
    };
  return {
    ...credentials,
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || 6379),
    tls,
  };
}

/** BullMQ connection options. */
export function redisConnection(target: RedisTarget | string): ConnectionOptions {
  // Workers block on Redis; ioredis must not give up on those commands.
  return { ...redisOptions(target), maxRetriesPerRequest: null };
}

/**
 * ioredis's ways of saying Redis cannot be reached right now (most have no class of their own): a request that
 * needed Redis is answered 503 with Retry-After, like a full queue, never 500.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    err.name === 'ClusterAllFailedError' ||
    /enableOfflineQueue options is false|Connection is closed/.test(err.message)
  );
}

/**
 * A queue's own Redis client, as ioredis types it (BullMQ types it with only the commands it uses itself): for state
 * kept beside the jobs (owed alerts, reminders' send marks) with no connection of its own.
 */
export async function queueRedis(queue: Pick<Queue, 'client'>): Promise<Redis> {
  return (await queue.client) as unknown as Redis;
}
