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

  it('refuses a size or a number in flight below 1', () => {
    const { run } = controlledRun();
    expect(() => new MicroBatcher(run, { maxBatch: 0, maxInFlight: 1 })).toThrow();
    expect(() => new MicroBatcher(run, { maxBatch: 1, maxInFlight: 0 })).toThrow();
  });
});
