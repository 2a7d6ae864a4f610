import { Inject, Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import { MicroBatcher } from '@kc/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { CompletedTaskEventsProducer, PatientRecordEventsProducer, type InfusionCompletedJob } from '@kc/queue';
import { MeteredWorkerHost } from '../metered-worker-host';
import { QueueJobMetrics } from '../queue-job-metrics';
import { slowJobProgress } from '../slow-job-progress';
import { FollowUpService, type FollowUpEvent, type FollowUpOutcome } from './follow-up.service';
import { FollowUpMetrics } from './follow-up.metrics';

/**
 * Queue mechanics only: the business logic is FollowUpService's, the rules libs/followups'. Registered on the
 * followups queue by WorkerModule.forRoot (worker options come from config). A thrown error fails the attempt
 * and BullMQ retries it with the job's backoff; the Tasks' deterministic keys make a retry harmless.
 *
 * Jobs that run at the same time are handled in batches (group commit): a batch's events share the follow-up
 * service's three FHIR requests, so a busy worker pays each request's fixed cost (HTTP, the server's commit) once per
 * batch; a lone event starts at once, in a batch of one. Each job still succeeds or fails on its own.
 */
@Injectable()
export class FollowUpProcessor extends MeteredWorkerHost {
  private readonly batches: MicroBatcher<FollowUpEvent, FollowUpOutcome>;

  constructor(
    private readonly followUps: FollowUpService,
    private readonly metrics: FollowUpMetrics,
    private readonly records: PatientRecordEventsProducer,
    private readonly orders: CompletedTaskEventsProducer,
    queueMetrics: QueueJobMetrics,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    super(queueMetrics);
    this.batches = new MicroBatcher((events) => this.followUps.handleMany(events), {
      maxBatch: config.followUpBatchSize,
      maxInFlight: config.workerConcurrency,
    });
    metrics.countWaitingEvents(() => this.batches.queued);
  }

  async process(job: Job<InfusionCompletedJob>): Promise<FollowUpOutcome> {
    const stop = this.metrics.jobSeconds.startTimer();
    try {
      const progress = slowJobProgress(job);
      const outcome = await this.batches.submit({ procedureId: job.data.procedureId, progress: progress.step });
      await progress.done();
      // A contraindication found: the orders approved under the plan are held by a job of their own (the event keeps
      // its three FHIR requests). A retry of this job queues it again: holding twice writes nothing more.
      if (outcome.status === 'created' && outcome.contraindications > 0)
        await this.records.holdOrdersOf(`CarePlan/${outcome.carePlanId}`);
      // An infusion naming no plan: the plans its issue holds (raised) or held (resolved, it was linked) checked now.
      for (const carePlan of outcome.plansToRecheck ?? []) await this.records.holdOrdersOf(carePlan);
      // A session this service closed though the pump had begun it (its record charted before this infusion): the
      // order's job undoes the closing now the infusion that answers it is on record (CrossedClosings).
      for (const orderId of outcome.cancelledOrdersGiven ?? []) await this.orders.enqueueOrderChange(orderId);
      this.metrics.jobs.inc({ result: outcome.status });
      if (outcome.status === 'created') this.metrics.observeEventToTask(Date.now() - job.timestamp);
      return outcome;
    } catch (err) {
      this.metrics.jobs.inc({ result: 'failed' });
      throw err;
    } finally {
      stop();
    }
  }
}
