import type { Resource } from '@medplum/fhirtypes';

/**
 * Where polling got to: the newest lastUpdated seen, and every id seen (with its lastUpdated) in the overlap
 * window just before it. The next poll asks from `since - overlap`, so a resource that a server stamped earlier
 * but committed later (HAPI stamps at transaction start; clocks differ) is still found; the `seen` entries keep
 * resources already taken in that window, including several stamped in the same millisecond, from being taken
 * twice. Pure: the poller keeps it in Redis.
 */
export interface PollCursor {
  since: string;
  seen: Record<string, string>;
}

export function startCursor(since: Date): PollCursor {
  return { since: since.toISOString(), seen: {} };
}

/** The _lastUpdated lower bound of the next search (inclusive). */
export function searchFrom(cursor: PollCursor, overlapMs: number): string {
  return new Date(Date.parse(cursor.since) - overlapMs).toISOString();
}

/** Which of the resources a poll returned are new, and the cursor after taking them. */
export function takeFresh<T extends Resource>(
  cursor: PollCursor,
  changed: T[],
  overlapMs: number,
): { fresh: T[]; next: PollCursor } {
  const fresh: T[] = [];
  const seen = { ...cursor.seen };
  let newest = Date.parse(cursor.since);
  for (const resource of changed) {
    const at = Date.parse(resource.meta?.lastUpdated ?? '');
    if (!resource.id || !Number.isFinite(at)) continue;
    const before = seen[resource.id];
    if (before !== undefined && Date.parse(before) === at) continue;
    fresh.push(resource);
    seen[resource.id] = new Date(at).toISOString();
    newest = Math.max(newest, at);
  }
  const keepFrom = newest - overlapMs;
  const kept = Object.fromEntries(Object.entries(seen).filter(([, at]) => Date.parse(at) >= keepFrom));
  return { fresh, next: { since: new Date(newest).toISOString(), seen: kept } };
}

/** Reads a stored cursor, including the earlier {since, seenAtSince} shape. */
export function parseCursor(stored: string | null): PollCursor | undefined {
  if (!stored) return undefined;
  const value = JSON.parse(stored) as Partial<PollCursor> & { seenAtSince?: string[] };
  if (!value.since || Number.isNaN(Date.parse(value.since))) return undefined;
  const seen = value.seen ?? Object.fromEntries((value.seenAtSince ?? []).map((id) => [id, value.since!]));
  return { since: value.since, seen };
}
