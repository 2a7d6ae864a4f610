import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { addKeyed, redisConnection } from '@kc/queue';
import { waitFor } from './support/clinic';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * addKeyed against a real Redis and BullMQ: the one way the service's producers queue a job keyed by what it is about
 * (a resource, a reminder and its time), so that a job failed for good, or running, does not swallow the next change.
 */
describe('keyed jobs (addKeyed)', () => {
  const prefix = `kc-test-${randomUUID().slice(0, 8)}`;
  const connection = redisConnection(REDIS_URL);
  let queue: Queue<{ about: string }>;
  let events: QueueEvents;
  let worker: Worker<{ about: string }>;
  /** What the worker does with each job it runs (set by each test). */
  let work: (job: Job<{ about: string }>) => Promise<string>;
  const ran: string[] = [];

  beforeAll(async () => {
    queue = new Queue('keyed', { connection, prefix });
    events = new QueueEvents('keyed', { connection, prefix });
    worker = new Worker<{ about: string }>(
      'keyed',
      async (job) => {
        ran.push(job.id!);
        return work(job);
      },
      { connection, prefix, concurrency: 2 },
    );
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);
  });
  afterAll(async () => {
    await worker.close();
    await events.close();
    await queue.obliterate({ force: true });
    await queue.close();
  });
  beforeEach(() => {
    ran.length = 0;
  });

  const opts = (jobId: string) => ({
    jobId,
    attempts: 3,
    backoff: { type: 'fixed' as const, delay: 10 },
    removeOnComplete: true,
    removeOnFail: false,
  });
  const finished = (jobId: string) =>
    waitFor(async () => {
      const state = await queue.getJobState(jobId);
      return (state === 'failed' || state === 'unknown') && state;
    }, `job ${jobId} to finish`);

  it('a job failed for good (its attempts spent) is queued again, with all its attempts, by the next add of its key', async () => {
    let down = true;
    work = () => (down ? Promise.reject(new Error('FHIR server down')) : Promise.resolve('done'));
    await addKeyed(queue, 'heard', { about: 'Task/1' }, opts('task-1'));
    expect(await finished('task-1')).toBe('failed');
    expect((await queue.getJob('task-1'))!.attemptsMade).toBe(3);

    // Still down: queued again, it fails again after its three attempts (not after one).
    await addKeyed(queue, 'heard', { about: 'Task/1' }, opts('task-1'));
    expect(await finished('task-1')).toBe('failed');
    expect(ran.filter((id) => id === 'task-1')).toHaveLength(6);

    down = false;
    const done = new Promise<void>((resolve) =>
      events.on('completed', ({ jobId }) => (jobId === 'task-1' ? resolve() : undefined)),
    );
    expect(await addKeyed(queue, 'heard', { about: 'Task/1' }, opts('task-1'))).toBe('task-1');
    await done;
    expect(await queue.getJobState('task-1')).toBe('unknown');
  });

  it('a job running now is left, or has another queued after it (it may have read before the change)', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    work = async (job) => {
      if (job.id === 'order-1') await held;
      return 'done';
    };
    await addKeyed(queue, 'heard', { about: 'MedicationRequest/1' }, opts('order-1'));
    await waitFor(async () => (await queue.getJobState('order-1')) === 'active', 'the first job to run');

    // Left, by default: nothing more is queued.
    expect(await addKeyed(queue, 'heard', { about: 'MedicationRequest/1' }, opts('order-1'))).toBe('order-1');
    // A patient's record changed again: another job, after it.
    const after = await addKeyed(queue, 'heard', { about: 'MedicationRequest/1' }, opts('order-1'), 'another-after');
    expect(after).toMatch(/^order-1-after-\d+$/);
    await waitFor(async () => (await queue.getJobState(after)) === 'unknown', 'the job after it to run');
    release();
    await finished('order-1');
    expect(ran.sort()).toEqual([after, 'order-1'].sort());
  });

  it('a job waiting under its key takes the add: one job, as BullMQ keeps it', async () => {
    work = () => Promise.resolve('done');
    await addKeyed(queue, 'heard', { about: 'Task/2' }, { ...opts('task-2'), delay: 60_000 });
    expect(await addKeyed(queue, 'heard', { about: 'Task/2' }, { ...opts('task-2'), delay: 60_000 })).toBe('task-2');
    expect((await queue.getDelayed()).filter((j) => j.id === 'task-2')).toHaveLength(1);
    await (await queue.getJob('task-2'))!.remove();
  });
});
