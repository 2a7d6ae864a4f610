import type { JobsOptions, Queue } from 'bullmq';

/** What to do when the job under the key is running now. */
export type WhileRunning =
  /**
   * Queue another after it, under the key and a suffix: it may have read what it acts on before this change (a
   * patient's record: since session 45).
   */
  | 'another-after'
  /**
   * Leave it, as BullMQ does: what it misses is found by the polls and sweeps. Measured in session 54: another job
   * after each running one, for every kind, cost persisted `$apply` about a fifth of its rate (the service hears its
   * own writes, a plan created and then changed, while the first job runs).
   */
  | 'leave';

/**
 * Adds a job keyed by what it is about (`opts.jobId`: a resource, a reminder and its time), as every producer of a job
 * that reads the FHIR server when it runs does. BullMQ drops an add under an id it still holds, so:
 * - a job kept as failed (its attempts spent while the FHIR server, or a mail server, was down longer than its
 *   backoff; on the dead letters) is removed and queued again with all its attempts, as the change now heard asks.
 *   Before session 54 (but for infusions and patient records) such a resource was never heard again, whatever changed:
 *   a reminder never sent, a pump record, a check done in the EHR or an order closed there never acted on;
 * - a job running now is left (the default), or has another queued after it (`whileRunning`).
 * A completed job kept under the key still drops the add (a duplicate delivery of the same event). The job id queued.
 */
export async function addKeyed<T>(
  queue: Queue<T>,
  name: string,
  data: T,
  opts: JobsOptions & { jobId: string },
  whileRunning: WhileRunning = 'leave',
): Promise<string> {
  const state = await queue.getJobState(opts.jobId);
  if (state === 'failed') await (await queue.getJob(opts.jobId))?.remove();
  const jobId =
    state === 'active' && whileRunning === 'another-after' ? `${opts.jobId}-after-${Date.now()}` : opts.jobId;
  // BullMQ's typing of add's name and data is tied to the queue's generic parameters; these are the queue's own.
  await (queue as Queue).add(name, data, { ...opts, jobId });
  return jobId;
}
