import type { ConnectionOptions } from 'bullmq';

/** BullMQ connection options from a redis:// URL. */
export function redisConnection(redisUrl: string): ConnectionOptions {
  const redis = new URL(redisUrl);
  return {
    host: redis.hostname,
    port: Number(redis.port || 6379),
    username: redis.username || undefined,
    password: redis.password ? decodeURIComponent(redis.password) : undefined,
    db: redis.pathname.length > 1 ? Number(redis.pathname.slice(1)) : 0,
    // Workers block on Redis; ioredis must not give up on those commands.
    maxRetriesPerRequest: null,
  };
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
