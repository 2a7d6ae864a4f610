import { RecentReads } from './recent-reads';

describe('RecentReads', () => {
  it('lists what was read, not a read still under way (a page must not wait on a slow server’s read for another)', async () => {
    const reads = new RecentReads<string>(30_000, 10);
    await reads.get('a', () => Promise.resolve('plan a'));
    let finish: (value: string) => void = () => undefined;
    const slow = reads.get('b', () => new Promise<string>((resolve) => (finish = resolve)));
    expect(reads.answers()).toEqual(['plan a']);
    finish('plan b');
    await slow;
    expect(reads.answers()).toEqual(['plan b', 'plan a']);
  });

  it('keeps an answer for its time, drops a failed read, and the oldest past its bound', async () => {
    const reads = new RecentReads<string>(1_000, 2);
    let count = 0;
    const read = () => Promise.resolve(`read ${++count}`);
    expect(await reads.get('a', read, 0)).toBe('read 1');
    expect(await reads.get('a', read, 999)).toBe('read 1');
    expect(await reads.get('a', read, 1_000)).toBe('read 2');
    await expect(reads.get('b', () => Promise.reject(new Error('down')), 1_000)).rejects.toThrow('down');
    expect(await reads.get('b', read, 1_001)).toBe('read 3');
    await reads.get('c', read, 1_002);
    expect(reads.answers()).toEqual(['read 4', 'read 3']);
  });
});
