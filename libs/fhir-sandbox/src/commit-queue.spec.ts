import { DatabaseSync } from 'node:sqlite';
import { CommitQueue } from './commit-queue';

function queueOn(db: DatabaseSync, onRollback = jest.fn()) {
  db.exec('CREATE TABLE t (v TEXT)');
  return { queue: new CommitQueue(db, { durable: false, onRollback }), onRollback };
}

const values = (db: DatabaseSync) =>
  (db.prepare('SELECT v FROM t ORDER BY rowid').all() as { v: string }[]).map((r) => r.v);

describe('CommitQueue', () => {
  let db: DatabaseSync;
  beforeEach(() => (db = new DatabaseSync(':memory:')));
  afterEach(() => db.close());

  it('runs operations one at a time, in the order they came, even when each waits on I/O', async () => {
    const { queue } = queueOn(db);
    const log: string[] = [];
    const op = (name: string, ms: number) =>
      queue.run(async () => {
        log.push(`${name} start`);
        await new Promise((resolve) => setTimeout(resolve, ms));
        log.push(`${name} end`);
      });
    await Promise.all([op('a', 20), op('b', 0), op('c', 5)]);
    expect(log).toEqual(['a start', 'a end', 'b start', 'b end', 'c start', 'c end']);
  });

  it('runs a call made inside an operation at once (the router calls back into the repository)', async () => {
    const { queue } = queueOn(db);
    const inner = await queue.run(() => queue.run(() => 'inner'));
    expect(inner).toBe('inner');
  });

  it('answers the writes queued behind one another with one commit, and each is there when answered', async () => {
    const { queue } = queueOn(db);
    const answered: string[][] = [];
    const write = (v: string) =>
      queue
        .run(() => queue.atomic(() => db.prepare('INSERT INTO t (v) VALUES (?)').run(v)))
        .then(() => {
          // Read outside the group: only committed rows are answered.
          answered.push(values(db));
        });
    await Promise.all(['a', 'b', 'c', 'd'].map(write));
    expect(queue.groupCommits).toBe(1);
    expect(answered.every((seen) => seen.length === 4)).toBe(true);
  });

  it('rolls back only the failed write of a group, and says so (onRollback)', async () => {
    const { queue, onRollback } = queueOn(db);
    const insert = (v: string) => db.prepare('INSERT INTO t (v) VALUES (?)').run(v);
    const results = await Promise.allSettled([
      queue.run(() => queue.atomic(() => insert('kept'))),
      queue.run(() =>
        queue.atomic(() => {
          insert('undone');
          throw new Error('invalid');
        }),
      ),
      queue.run(() => queue.atomic(() => insert('also kept'))),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(values(db)).toEqual(['kept', 'also kept']);
    expect(onRollback).toHaveBeenCalledTimes(1);
  });

  it('undoes the whole of a failed transaction, writes of nested operations included', async () => {
    const { queue } = queueOn(db);
    const insert = (v: string) => db.prepare('INSERT INTO t (v) VALUES (?)').run(v);
    await expect(
      queue.transaction(async () => {
        queue.atomic(() => insert('first'));
        await queue.run(() => queue.atomic(() => insert('second')));
        throw new Error('a later entry failed');
      }),
    ).rejects.toThrow('a later entry failed');
    await queue.transaction(() => Promise.resolve(queue.atomic(() => insert('committed'))));
    expect(values(db)).toEqual(['committed']);
  });

  it('refuses operations once closed, keeping what was committed', async () => {
    const { queue } = queueOn(db);
    await queue.run(() => queue.atomic(() => db.prepare('INSERT INTO t (v) VALUES (?)').run('last')));
    queue.close();
    expect(values(db)).toEqual(['last']);
    await expect(queue.run(() => 1)).rejects.toThrow('FHIR store is closed');
  });

  it('tells of the changes a commit made, in order, and never of those rolled back with their savepoint', async () => {
    db.exec('CREATE TABLE t (v TEXT)');
    const told: string[][] = [];
    const queue = new CommitQueue<string>(db, {
      durable: false,
      onRollback: () => undefined,
      onCommitted: (changes) => told.push(changes),
    });
    const write = (v: string) =>
      queue.atomic(() => {
        db.prepare('INSERT INTO t (v) VALUES (?)').run(v);
        queue.record(v);
      });
    await Promise.allSettled([
      queue.run(() => write('a')),
      queue.run(() =>
        queue.atomic(() => {
          write('undone');
          throw new Error('this write fails');
        }),
      ),
      queue.transaction(async () => {
        write('in a failed transaction');
        await queue.run(() => write('nested, in it too'));
        throw new Error('a later entry failed');
      }),
      queue.transaction(() => Promise.resolve(write('b'))),
    ]);
    expect(values(db)).toEqual(['a', 'b']);
    expect(told).toEqual([['a', 'b']]);
  });
});
