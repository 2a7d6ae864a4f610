import { MicroBatcher } from './micro-batcher';

/** A run whose batches the test finishes by hand, so what waits and what runs is the test's to see. */
function controlledRun() {
  const batches: {
    items: number[];
    finish: (results?: PromiseSettledResult<string>[]) => void;
    fail: (err: Error) => void;
  }[] = [];
  const run = (items: number[]) =>
    new Promise<PromiseSettledResult<string>[]>((resolve, reject) => {
      batches.push({
        items,
        finish: (results) => resolve(results ?? items.map((i) => ({ status: 'fulfilled', value: `done ${i}` }))),
        fail: reject,
      });
    });
  return { batches, run };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('MicroBatcher', () => {
  it('starts a lone item at once, in a batch of its own', async () => {
    const { batches, run } = controlledRun();
    const batcher = new MicroBatcher(run, { maxBatch: 8, maxInFlight: 2 });
    const answer = batcher.submit(1);
    expect(batches.map((b) => b.items)).toEqual([[1]]);
    batches[0].finish();
    await expect(answer).resolves.toBe('done 1');
  });

  it('groups the items that arrive while maxInFlight batches run, up to maxBatch, in arrival order', async () => {
    const { batches, run } = controlledRun();
    const batcher = new MicroBatcher(run, { maxBatch: 3, maxInFlight: 2 });
    const answers = [1, 2, 3, 4, 5, 6].map((i) => batcher.submit(i));
    expect(batches.map((b) => b.items)).toEqual([[1], [2]]);
    expect(batcher.queued).toBe(4);
    batches[0].finish();
    await settle();
    expect(batches.map((b) => b.items)).toEqual([[1], [2], [3, 4, 5]]);
    batches[1].finish();
    await settle();
    expect(batches.map((b) => b.items)).toEqual([[1], [2], [3, 4, 5], [6]]);
    batches[2].finish();
    batches[3].finish();
    await expect(Promise.all(answers)).resolves.toEqual([1, 2, 3, 4, 5, 6].map((i) => `done ${i}`));
    expect(batcher.queued).toBe(0);
  });

  it("answers each item with its own result: one item's failure is not its neighbours'", async () => {
    const { batches, run } = controlledRun();
    const batcher = new MicroBatcher(run, { maxBatch: 8, maxInFlight: 1 });
    const first = batcher.submit(1);
    const [second, third] = [batcher.submit(2), batcher.submit(3)];
    batches[0].finish();
    await first;
    await settle();
    batches[1].finish([
      { status: 'rejected', reason: new Error('conflict on 2') },
      { status: 'fulfilled', value: 'done 3' },
    ]);
    await expect(second).rejects.toThrow('conflict on 2');
    await expect(third).resolves.toBe('done 3');
  });

  it('fails every item of a batch whose run throws, or answers the wrong number of results, and goes on', async () => {
    const { batches, run } = controlledRun();
    const batcher = new MicroBatcher(run, { maxBatch: 8, maxInFlight: 1 });
    const lone = batcher.submit(1);
    const [a, b] = [batcher.submit(2), batcher.submit(3)];
    batches[0].fail(new Error('FHIR server unreachable'));
    await expect(lone).rejects.toThrow('FHIR server unreachable');
    await settle();
    batches[1].finish([{ status: 'fulfilled', value: 'only one' }]);
    await expect(a).rejects.toThrow('a batch of 2 was answered with 1 results');
    await expect(b).rejects.toThrow('a batch of 2 was answered with 1 results');
    const next = batcher.submit(4);
    batches[2].finish();
    await expect(next).resolves.toBe('done 4');
  });

  describe('a stalled batch (one slow request)', () => {
    beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'] }));
    afterEach(() => jest.useRealTimers());

    it('stops holding its place: the items queued behind it start another batch, up to maxRunning', async () => {
      const { batches, run } = controlledRun();
      const stalls: number[] = [];
      const batcher = new MicroBatcher(run, {
        maxBatch: 2,
        maxInFlight: 1,
        stall: { afterMs: 250, maxRunning: 3, onStalled: (items) => stalls.push(items) },
      });
      const slow = batcher.submit(1);
      const queued = [2, 3, 4, 5, 6, 7].map((i) => batcher.submit(i));
      expect(batches.map((b) => b.items)).toEqual([[1]]);
      jest.advanceTimersByTime(249);
      expect(batches).toHaveLength(1);
      jest.advanceTimersByTime(1);
      // Batch [1] stalled: [2, 3] starts; when it stalls too, [4, 5]; then maxRunning (3) holds the rest back.
      expect(batches.map((b) => b.items)).toEqual([[1], [2, 3]]);
      expect(batcher.stalledBatches).toBe(1);
      jest.advanceTimersByTime(250);
      expect(batches.map((b) => b.items)).toEqual([[1], [2, 3], [4, 5]]);
      jest.advanceTimersByTime(1000);
      expect(batches).toHaveLength(3);
      expect(stalls).toEqual([1, 2, 2]);
      expect(batcher.queued).toBe(2);
      expect(batcher.stalledBatches).toBe(3);
      // The second batch answers first; the slow ones are still out, and the queued items go in its place.
      batches[1].finish();
      await expect(Promise.all(queued.slice(0, 2))).resolves.toEqual(['done 2', 'done 3']);
      await settle();
      expect(batches.map((b) => b.items)).toEqual([[1], [2, 3], [4, 5], [6, 7]]);
      expect(batcher.stalledBatches).toBe(2);
      for (const b of batches.slice(2)) b.finish();
      batches[0].finish();
      await expect(slow).resolves.toBe('done 1');
      await expect(Promise.all(queued)).resolves.toEqual([2, 3, 4, 5, 6, 7].map((i) => `done ${i}`));
      expect(batcher.stalledBatches).toBe(0);
    });

    it('a batch that answers in time is not counted, and without stall the queue waits for it', async () => {
      const { batches, run } = controlledRun();
      const stalls: number[] = [];
      const withStall = new MicroBatcher(run, {
        maxBatch: 8,
        maxInFlight: 1,
        stall: { afterMs: 250, maxRunning: 4, onStalled: (items) => stalls.push(items) },
      });
      const first = withStall.submit(1);
      jest.advanceTimersByTime(100);
      batches[0].finish();
      await first;
      await settle();
      jest.advanceTimersByTime(1000);
      expect(stalls).toEqual([]);

      const without = new MicroBatcher(run, { maxBatch: 8, maxInFlight: 1 });
      const slow = without.submit(10);
      const behind = without.submit(11);
      jest.advanceTimersByTime(60_000);
      expect(batches.map((b) => b.items)).toEqual([[1], [10]]);
      batches[1].finish();
      await slow;
      await settle();
      batches[2].finish();
      await expect(behind).resolves.toBe('done 11');
    });
  });

  it('refuses a size or a number in flight below 1', () => {
    const { run } = controlledRun();
    expect(() => new MicroBatcher(run, { maxBatch: 0, maxInFlight: 1 })).toThrow();
    expect(() => new MicroBatcher(run, { maxBatch: 1, maxInFlight: 0 })).toThrow();
    expect(
      () => new MicroBatcher(run, { maxBatch: 1, maxInFlight: 2, stall: { afterMs: 100, maxRunning: 1 } }),
    ).toThrow('stall.maxRunning must be >= maxInFlight');
  });
});
