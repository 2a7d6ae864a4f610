import { Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import { PatientRecordEventsProducer, type InfusionCompletedJob } from '@kc/queue';
import { MeteredWorkerHost } from '../metered-worker-host';
import { QueueJobMetrics } from '../queue-job-metrics';
import { slowJobProgress } from '../slow-job-progress';
import { FollowUpService, type FollowUpOutcome } from './follow-up.service';
import { FollowUpMetrics } from './follow-up.metrics';

/**
 * Queue mechanics only: the business logic is FollowUpService's, the rules libs/followups'. Registered on the
 * followups queue by WorkerModule.forRoot (worker options come from config). A thrown error fails the attempt
 * and BullMQ retries it with the job's backoff; the conditional creates make a retry harmless.
 */
@Injectable()
export class FollowUpProcessor extends MeteredWorkerHost {
  constructor(
    private readonly followUps: FollowUpService,
    private readonly metrics: FollowUpMetrics,
    private readonly records: PatientRecordEventsProducer,
    queueMetrics: QueueJobMetrics,
  ) {
    super(queueMetrics);
  }

  async process(job: Job<InfusionCompletedJob>): Promise<FollowUpOutcome> {
    const stop = this.metrics.jobSeconds.startTimer();
    try {
      const progress = slowJobProgress(job);
      const outcome = await this.followUps.handle(job.data.procedureId, progress.step);
      await progress.done();
      // A contraindication found: the orders approved under the plan are held by a job of their own (the event keeps
      // its three FHIR requests). A retry of this job queues it again: holding twice writes nothing more.
      if (outcome.status === 'created' && outcome.contraindications > 0)
        await this.records.enqueue(`CarePlan/${outcome.carePlanId}`);
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
