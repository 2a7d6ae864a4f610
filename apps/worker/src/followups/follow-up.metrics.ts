import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { NOT_BASED_ON_A_CAREPLAN } from '@kc/followups';

/** What operators watch about follow-up generation. */
@Injectable()
export class FollowUpMetrics {
  readonly jobs: Counter<'result'>;
  readonly ignored: Counter<'why'>;
  readonly jobSeconds: Histogram;
  readonly batchEvents: Histogram;
  readonly batchesSplit: Counter;
  private readonly eventToTask: Histogram;
  /** Where the gauge of events waiting for a batch reads from (the processor's batcher). */
  private waitingEvents: () => number = () => 0;

  constructor(registry: Registry) {
    this.jobs = new Counter({
      name: 'kc_followup_jobs_total',
      help: 'Follow-up jobs by result (created, ignored, failed attempt)',
      labelNames: ['result'],
      registers: [registry],
    });
    this.ignored = new Counter({
      name: 'kc_infusion_events_ignored_total',
      help: "Events not followed up, by why (ignoredWhy): plan-completed, plan-revoked, plan-entered-in-error (its care plan closed: under a plan recorded in error an infusion gets no check; under one stopped or completed only when its check was planned already), plan-not-found, procedure-not-found, charted-twice, no-plan (naming none of the service's plans: a clinician is asked to link it), not-an-infusion",
      labelNames: ['why'],
      registers: [registry],
    });
    this.jobSeconds = new Histogram({
      name: 'kc_followup_job_seconds',
      help: 'Time to process one follow-up job',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.batchEvents = new Histogram({
      name: 'kc_followup_batch_events',
      help: 'Events handled together in one batch of FHIR requests (1 when events arrive one at a time)',
      buckets: [1, 2, 4, 8, 16, 32],
      registers: [registry],
    });
    this.batchesSplit = new Counter({
      name: 'kc_followup_batches_split_total',
      help: 'Batches whose shared transaction the FHIR server refused, so each event was handled alone',
      registers: [registry],
    });
    this.eventToTask = new Histogram({
      name: 'kc_event_to_task_seconds',
      help: 'From the event being received (job queued) to its follow-up Tasks being written, retries included',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 900, 3600],
      registers: [registry],
    });
    const waiting = () => this.waitingEvents();
    new Gauge({
      name: 'kc_followup_batch_waiting_events',
      help: "Events whose job runs but waits for a batch (the worker's batches are all in flight)",
      registers: [registry],
      collect() {
        this.set(waiting());
      },
    });
  }

  /** The gauge of events waiting for a batch reads `count` at each scrape. */
  countWaitingEvents(count: () => number): void {
    this.waitingEvents = count;
  }

  observeEventToTask(ms: number): void {
    if (ms >= 0) this.eventToTask.observe(ms / 1000);
  }
}

/**
 * Why an infusion event was not followed up, as a label from a bounded set (the reason itself, which may name ids, goes
 * to the log only). Since session 51; before, one count for all, so an infusion given under a stopped plan was not told
 * apart from a procedure that was no infusion.
 */
export function ignoredWhy(reason: string): string {
  const closed = /^CarePlan is (completed|revoked|entered-in-error)$/.exec(reason);
  if (closed) return `plan-${closed[1]}`;
  if (reason === 'CarePlan not found') return 'plan-not-found';
  if (reason === 'Procedure not found') return 'procedure-not-found';
  if (reason.startsWith('charted twice')) return 'charted-twice';
  if (reason.startsWith(NOT_BASED_ON_A_CAREPLAN) || reason.includes('names no care plan')) return 'no-plan';
  return 'not-an-infusion';
}
