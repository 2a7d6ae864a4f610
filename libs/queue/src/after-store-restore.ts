import { Queue } from 'bullmq';
import { JOBS } from './jobs';
import { QUEUES } from './queue-names';
import { redisConnection, type RedisTarget } from './redis-connection';

/** The queues whose completed job ids stand for work written to the FHIR store (and so lost with a restore). */
const STORE_DERIVED_QUEUES = [QUEUES.followups, QUEUES.outcomes, QUEUES.reminders] as const;

const CLEAN_BATCH = 10_000;

/**
 * After the FHIR store was restored from a backup: forgets the completed jobs whose ids keep an event from being
 * handled twice (a follow-up, a score, a reminder sent). What they wrote after the backup is gone from the store, so
 * the reconciliation sweeps must be free to do it again; the Tasks' keys keep what the store still holds from being
 * written twice. Pending, delayed and failed jobs stay. Returns the number forgotten per queue.
 */
export async function forgetCompletedWork(target: RedisTarget, prefix: string): Promise<Record<string, number>> {
  const forgotten: Record<string, number> = {};
  for (const name of STORE_DERIVED_QUEUES) {
    const queue = new Queue(name, { connection: redisConnection(target), prefix });
    try {
      let total = 0;
      // At most CLEAN_BATCH a call: 0 would clean all at once, one long script blocking Redis on a big queue.
      for (let removed = CLEAN_BATCH; removed === CLEAN_BATCH; total += removed)
        removed = (await queue.clean(0, CLEAN_BATCH, 'completed')).length;
      forgotten[name] = total;
    } finally {
      await queue.close();
    }
  }
  return forgotten;
}

/**
 * Queues the reconciliation sweeps (infusions and scores of the lookback window, reminders due) to run once, as soon
 * as a worker is up: the work a restore lost is redone at start rather than at the next scheduled sweep (up to
 * RECONCILE_EVERY_MS later). Returns the job ids.
 */
export async function queueSweepsNow(target: RedisTarget, prefix: string, now = new Date()): Promise<string[]> {
  const queue = new Queue(QUEUES.maintenance, { connection: redisConnection(target), prefix });
  try {
    const jobs = await queue.addBulk(
      [JOBS.reconcileProcedures, JOBS.sweepReminders].map((name) => ({
        name,
        data: {},
        opts: { jobId: `${name}-after-restore-${now.getTime()}`, removeOnComplete: 100, removeOnFail: 100 },
      })),
    );
    return jobs.map((job) => job.id!);
  } finally {
    await queue.close();
  }
}
