import type { Resource } from '@medplum/fhirtypes';
import type { Queue } from 'bullmq';
import type { AppConfig } from '@kc/config';
import { parseCursor, searchFrom, startCursor, takeFresh, type PollCursor } from './poll-cursor';

/** What the cursor needs of a Redis client (BullMQ's queue client). */
interface KeyValue {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<unknown>;
}

/** A cursor kept in Redis under one key (the poll-cursor module decides what is fresh). */
export interface StoredCursor {
  redis: KeyValue;
  key: string;
  /** Where a first poll starts (now, or POLL_SINCE). */
  first: PollCursor;
  overlapMs: number;
}

/**
 * The cursor of one poll (`procedures`, `scores`), in the maintenance queue's Redis, starting now or at POLL_SINCE;
 * `kind` `sweep`: one the 15-minute sweep keeps (under `sweep-cursor:`, apart from the polls').
 */
export async function pollCursor(
  queue: Queue,
  config: AppConfig,
  name: string,
  kind: 'poll' | 'sweep' = 'poll',
): Promise<StoredCursor> {
  return {
    redis: await queue.client,
    key: `${config.queuePrefix}:${kind}-cursor:${name}`,
    first: startCursor(config.pollSince ? new Date(config.pollSince) : new Date()),
    overlapMs: config.pollOverlapMs,
  };
}

/**
 * Sets the starting point unless a cursor is already stored. Two workers starting together may both write it;
 * both write "now" (or POLL_SINCE), and the overlap window covers the difference.
 */
export async function initCursor(cursor: StoredCursor): Promise<void> {
  if (!parseCursor(await cursor.redis.get(cursor.key)))
    await cursor.redis.set(cursor.key, JSON.stringify(cursor.first));
}

/**
 * One poll: search from the stored cursor, hand over what is new, then store the advanced cursor. Saved only after
 * `handle` (queuing) succeeded: a crash in between re-queues, which job ids make harmless, instead of losing events.
 */
export async function pollFromCursor<T extends Resource>(
  cursor: StoredCursor,
  search: (fromInclusive: string) => Promise<T[]>,
  handle: (fresh: T[]) => Promise<void>,
): Promise<{ fresh: T[]; next: PollCursor }> {
  const current = parseCursor(await cursor.redis.get(cursor.key)) ?? cursor.first;
  const changed = await search(searchFrom(current, cursor.overlapMs));
  const { fresh, next } = takeFresh(current, changed, cursor.overlapMs);
  await handle(fresh);
  await cursor.redis.set(cursor.key, JSON.stringify(next));
  return { fresh, next };
}

/**
 * One poll that queues each resource changed since the cursor for its job, by id (the job reads it and decides): the
 * polls of what other systems write (appointments, orders closed in the EHR, administrations, checks and answers).
 * `keep`: which of them have a job (the others still move the cursor). How many were queued.
 */
export async function queueChangedSince<T extends Resource>(
  cursor: StoredCursor,
  search: (fromInclusive: string) => Promise<T[]>,
  /** The resource's id, and the resource as the poll found it. */
  enqueue: (id: string, resource: T) => Promise<unknown>,
  keep: (resource: T) => boolean = () => true,
): Promise<number> {
  let queued = 0;
  await pollFromCursor(cursor, search, async (fresh) => {
    for (const resource of fresh.filter(keep)) {
      await enqueue(resource.id!, resource);
      queued++;
    }
  });
  return queued;
}
