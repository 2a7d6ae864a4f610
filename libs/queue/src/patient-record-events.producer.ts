import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { withinEnqueueTimeout } from './infusion-events.producer';
import { JOBS, recheckContraindicationsJobId, retryOptions, type RecheckContraindicationsJob } from './jobs';
import { QUEUES } from './queue-names';

/**
 * Puts a changed Condition or Observation on the maintenance queue, so the contraindications of its patient's plans
 * with open Tasks are checked now rather than at the next sweep (the job reads the record itself); or a CarePlan a
 * follow-up found contraindicated, so the orders approved under it are held now; or a DetectedIssue resolved outside
 * this service (or deleted there), so what it held is released now; or a PlanDefinition changed or deleted on the
 * FHIR server, so the plans following it are checked against it now; or an infusion recorded in error (or deleted),
 * so its plan is held until a clinician puts it right.
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
    const jobId = recheckContraindicationsJobId(reference);
    await withinEnqueueTimeout(
      this.queue.add(
        JOBS.recheckContraindications,
        { reference },
        { jobId, ...retryOptions(this.config), removeOnComplete: true, removeOnFail: false },
      ),
    );
    return { jobId };
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
