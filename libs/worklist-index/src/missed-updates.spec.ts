import type { Resource, Task } from '@medplum/fhirtypes';
import { MissedIndexUpdates } from './missed-updates';

const task = (id: string): Task => ({ resourceType: 'Task', id, status: 'draft', intent: 'plan' });

describe('MissedIndexUpdates', () => {
  it('replays what failed, oldest first, once', async () => {
    const applied: string[] = [];
    const missed = new MissedIndexUpdates((written) => {
      applied.push(...written.map((r) => r.id!));
      return Promise.resolve();
    });
    missed.keep([task('a'), task('b')], []);
    missed.keep([task('c')], ['Task/d/_history/1']);
    expect(missed.size).toBe(4);
    expect(await missed.replay()).toEqual({ replayed: 4, left: 0 });
    expect(applied).toEqual(['a', 'b', 'c']);
    expect(await missed.replay()).toEqual({ replayed: 0, left: 0 });
    expect(applied).toEqual(['a', 'b', 'c']);
  });

  it('stops at the first update that fails again and keeps it and the rest for the next try', async () => {
    let redisUp = false;
    const applied: string[] = [];
    const missed = new MissedIndexUpdates((written: Resource[]) => {
      if (!redisUp && written[0].id === 'b') return Promise.reject(new Error('Connection is closed.'));
      applied.push(written[0].id!);
      return Promise.resolve();
    });
    for (const id of ['a', 'b', 'c']) missed.keep([task(id)], []);
    expect(await missed.replay()).toEqual({ replayed: 1, left: 2 });
    redisUp = true;
    expect(await missed.replay()).toEqual({ replayed: 2, left: 0 });
    expect(applied).toEqual(['a', 'b', 'c']);
  });

  it('is bounded: past its limit the oldest are dropped (the reconciliation brings them back)', () => {
    const missed = new MissedIndexUpdates(() => Promise.resolve(), 3);
    expect(missed.keep([task('a'), task('b')], [])).toBe(0);
    expect(missed.keep([task('c'), task('d')], [])).toBe(2);
    expect(missed.size).toBe(2);
  });
});
