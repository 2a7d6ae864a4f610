/**
 * Group commit for work that arrives concurrently: items submitted while earlier batches are running wait, and the
 * next batch takes up to `maxBatch` of them at once. An item never waits for a timer: with fewer than `maxInFlight`
 * batches running it starts at once (alone, when it is the only one), so a quiet system keeps its latency and a busy
 * one pays each batch's fixed cost (a request, a commit) once per batch instead of once per item.
 *
 * `run` answers every item of its batch, in order, settled one by one: one item's failure is its own. A `run` that
 * throws fails every item of its batch.
 *
 * With `stall`, a batch still running after `stall.afterMs` stops holding one of the `maxInFlight` places: it is
 * waiting on something slow (one slow request to the FHIR server), and the items queued behind it start another batch
 * instead of waiting for it, up to `stall.maxRunning` batches in all (the bound when everything is slow).
 */
export class MicroBatcher<I, O> {
  private readonly waiting: { item: I; resolve: (out: O) => void; reject: (err: unknown) => void }[] = [];
  /** Batches running, stalled ones included. */
  private running = 0;
  /** Batches running past `stall.afterMs`: they no longer hold a place among the `maxInFlight`. */
  private stalled = 0;

  constructor(
    private readonly run: (items: I[]) => Promise<PromiseSettledResult<O>[]>,
    private readonly options: MicroBatcherOptions,
  ) {
    if (options.maxBatch < 1 || options.maxInFlight < 1) throw new Error('maxBatch and maxInFlight must be >= 1');
    if (options.stall && options.stall.maxRunning < options.maxInFlight)
      throw new Error('stall.maxRunning must be >= maxInFlight');
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.startBatches();
    });
  }

  /** Items waiting for a batch (a gauge for operators). */
  get queued(): number {
    return this.waiting.length;
  }

  /** Batches running past `stall.afterMs` now. */
  get stalledBatches(): number {
    return this.stalled;
  }

  private startBatches(): void {
    const { maxInFlight, maxBatch, stall } = this.options;
    const maxRunning = stall?.maxRunning ?? maxInFlight;
    while (this.running - this.stalled < maxInFlight && this.running < maxRunning && this.waiting.length) {
      const batch = this.waiting.splice(0, maxBatch);
      this.running++;
      let stalled = false;
      const timer =
        stall &&
        setTimeout(() => {
          stalled = true;
          this.stalled++;
          stall.onStalled?.(batch.length);
          this.startBatches();
        }, stall.afterMs);
      // A stall timer must not keep a process alive that has nothing else to do.
      if (timer) timer.unref();
      void this.runBatch(batch).finally(() => {
        clearTimeout(timer);
        this.running--;
        if (stalled) this.stalled--;
        this.startBatches();
      });
    }
  }

  private async runBatch(batch: typeof this.waiting): Promise<void> {
    let results: PromiseSettledResult<O>[];
    try {
      results = await this.run(batch.map((b) => b.item));
      if (results.length !== batch.length)
        throw new Error(`a batch of ${batch.length} was answered with ${results.length} results`);
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    batch.forEach((b, i) => {
      const result = results[i];
      if (result.status === 'fulfilled') b.resolve(result.value);
      else b.reject(result.reason);
    });
  }
}

export interface MicroBatcherOptions {
  /** Most items in one batch. */
  maxBatch: number;
  /** Batches running at once (stalled ones not counted). */
  maxInFlight: number;
  /** When a running batch counts as stalled, the most batches running then, and who is told of each stall. */
  stall?: { afterMs: number; maxRunning: number; onStalled?: (items: number) => void };
}

/** One item's answer for a batch's `run`: the work's value, or what it threw. */
export async function settledOf<T>(work: () => T | Promise<T>): Promise<PromiseSettledResult<T>> {
  try {
    return { status: 'fulfilled', value: await work() };
  } catch (reason) {
    return { status: 'rejected', reason };
  }
}

/** `items` cut into consecutive slices of the given sizes: each batched caller's part of a shared answer. */
export function slicesOf<T>(items: readonly T[], sizes: number[]): T[][] {
  let offset = 0;
  return sizes.map((size) => items.slice(offset, (offset += size)));
}
