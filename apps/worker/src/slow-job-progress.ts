import type { Job } from 'bullmq';

/** After this long a job's steps are worth showing on the dashboard. */
const SHOW_PROGRESS_AFTER_MS = 250;

/**
 * Progress for the jobs that are slow enough to watch. Each report is a Redis round trip (a Lua script and an
 * event), four per follow-up job: a tenth of a job's cost when it takes ~10 ms. So a job reports its steps only
 * once it has run for SHOW_PROGRESS_AFTER_MS (a slow FHIR server, a long history), and `done()` sets 100 only on
 * a job that reported a step; a fast job's completion says the same.
 */
export function slowJobProgress(job: Pick<Job, 'updateProgress'>, afterMs = SHOW_PROGRESS_AFTER_MS) {
  const started = Date.now();
  let shown = false;
  return {
    step: async (percent: number): Promise<void> => {
      if (!shown && Date.now() - started < afterMs) return;
      shown = true;
      await job.updateProgress(percent);
    },
    done: async (): Promise<void> => {
      if (shown) await job.updateProgress(100);
    },
  };
}
