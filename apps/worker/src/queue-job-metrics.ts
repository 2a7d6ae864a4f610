import { Injectable } from '@nestjs/common';
import { Counter, Histogram, Registry } from 'prom-client';

/** Per-queue job outcomes, counted where they happen (the worker), so they survive Redis trimming old jobs. */
@Injectable()
export class QueueJobMetrics {
  readonly finished: Counter<'queue' | 'result'>;
  readonly duration: Histogram<'queue'>;
  readonly revived: Counter<'queue'>;
  readonly givenUp: Counter<'queue'>;

  constructor(registry: Registry) {
    this.finished = new Counter({
      name: 'kc_queue_jobs_finished_total',
      help: 'Job attempts finished per queue: completed, failed (will retry) or dead (no attempt left)',
      labelNames: ['queue', 'result'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'kc_queue_job_seconds',
      help: 'Processing time of completed jobs per queue',
      labelNames: ['queue'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.revived = new Counter({
      name: 'kc_dead_letters_revived_total',
      help: 'Jobs kept as failed (attempts spent) that the worker tried again by itself, per queue',
      labelNames: ['queue'],
      registers: [registry],
    });
    this.givenUp = new Counter({
      name: 'kc_dead_letters_given_up_total',
      help: "Jobs kept as failed past DEAD_LETTER_REVIVAL_FOR_MS: no longer tried again by themselves, an operator's to retry",
      labelNames: ['queue'],
      registers: [registry],
    });
  }
}
