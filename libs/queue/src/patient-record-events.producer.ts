import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { withinEnqueueTimeout } from './infusion-events.producer';
import { JOBS, recheckContraindicationsJobId, retryOptions, type RecheckContraindicationsJob } from './jobs';
import { addKeyed } from './keyed-jobs';
import { QUEUES } from './queue-names';

/**
 * Puts a changed Condition or Observation on the maintenance queue, so the contraindications of its patient's plans
 * with open Tasks are checked now rather than at the next sweep (the job reads the record itself); or a CarePlan a
 * follow-up found contraindicated, so the orders approved under it are held now; or a DetectedIssue resolved outside
 * this service (or deleted there), so what it held is released now; or a PlanDefinition changed or deleted on the
 * FHIR server, so the plans following it are checked against it now; or an infusion recorded in error (or deleted),
 * so its plan is held until a clinician puts it right, or re-timed, so its follow-ups are counted again.
 */
@Injectable()
export class PatientRecordEventsProducer {
  constructor(
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue<RecheckContraindicationsJob>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async enqueue(
    reference: `${'Condition' | 'Observation' | 'CarePlan' | 'DetectedIssue' | 'PlanDefinition' | 'Procedure' | 'Patient'}/${string}`,
  ): Promise<{ jobId: string }> {
    const jobId = await withinEnqueueTimeout(this.add(reference));
    return { jobId };
  }

  /**
   * One job per record while it waits (its run reads the record as it is then, whatever changed meanwhile). A job of
   * the record running now may have read it before this change, so the change is heard by another job, after it (since
   * session 45; before, it was lost until the record changed again or the sweep: the clinic day, an infusion re-timed
   * twice in a row); one failed for good is queued again (addKeyed).
   */
  private add(reference: string): Promise<string> {
    return addKeyed(
      this.queue,
      JOBS.recheckContraindications,
      { reference },
      {
        jobId: recheckContraindicationsJobId(reference),
        ...retryOptions(this.config),
        removeOnComplete: true,
        removeOnFail: false,
      },
      'another-after',
    );
  }

  /**
   * The approved orders of a plan held now, because something the plan waits on was just written (a contraindication
   * a follow-up found, an effect reported at a check). Idempotent: the job holds what is still to hold.
   */
  holdOrdersOf(carePlan: string): Promise<{ jobId: string }> {
    if (!carePlan.startsWith('CarePlan/'))
      throw new TypeError(`holdOrdersOf needs a CarePlan reference, not ${carePlan}`);
    return this.enqueue(carePlan as `CarePlan/${string}`);
  }
}
