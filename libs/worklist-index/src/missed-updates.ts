import type { Resource } from '@medplum/fhirtypes';

interface Missed {
  written: Resource[];
  locations: string[];
}

/**
 * Worklist index updates that failed while Redis was unreachable, replayed in order once it is back, so the worklist
 * catches up then instead of at the next reconciliation (WORKLIST_RECONCILE_MS, 5 min). Replaying is safe: the index
 * applies a Task only when it is newer than what it holds. Bounded: past `maxResources` the oldest are dropped, which
 * the reconciliation brings back as before. In memory only: what a process that dies still holds waits for the
 * reconciliation too.
 */
export class MissedIndexUpdates {
  private pending: Missed[] = [];
  private held = 0;
  private replaying?: Promise<{ replayed: number; left: number }>;

  constructor(
    private readonly apply: (written: Resource[], locations: string[]) => Promise<void>,
    private readonly maxResources = 10_000,
  ) {}

  get size(): number {
    return this.held;
  }

  /** Keeps a failed update; returns how many resources were dropped to stay within the bound. */
  keep(written: Resource[], locations: string[]): number {
    this.pending.push({ written, locations });
    this.held += weight(written, locations);
    let dropped = 0;
    while (this.held > this.maxResources && this.pending.length > 1) {
      const oldest = this.pending.shift()!;
      const w = weight(oldest.written, oldest.locations);
      this.held -= w;
      dropped += w;
    }
    return dropped;
  }

  /** Applies what was kept, oldest first, until one fails (it and the rest wait for the next try). One at a time. */
  replay(): Promise<{ replayed: number; left: number }> {
    this.replaying ??= this.drain().finally(() => (this.replaying = undefined));
    return this.replaying;
  }

  private async drain(): Promise<{ replayed: number; left: number }> {
    let replayed = 0;
    while (this.pending.length) {
      const next = this.pending[0];
      try {
        await this.apply(next.written, next.locations);
      } catch {
        break;
      }
      this.pending.shift();
      const w = weight(next.written, next.locations);
      this.held -= w;
      replayed += w;
    }
    return { replayed, left: this.held };
  }
}

function weight(written: Resource[], locations: string[]): number {
  return written.length + locations.length;
}
