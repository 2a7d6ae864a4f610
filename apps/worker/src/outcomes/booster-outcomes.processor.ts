import { Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import type { ScoreRecordedJob } from '@kc/queue';
import { MeteredWorkerHost } from '../metered-worker-host';
import { QueueJobMetrics } from '../queue-job-metrics';
import { BoosterOutcomes, type BoosterOutcome } from './booster-outcomes.service';

/** Queue mechanics only: a score was recorded; BoosterOutcomes re-proposes the boosters it judges. */
@Injectable()
export class BoosterOutcomesProcessor extends MeteredWorkerHost {
  constructor(
    private readonly outcomes: BoosterOutcomes,
    queueMetrics: QueueJobMetrics,
  ) {
    super(queueMetrics);
  }

  process(job: Job<ScoreRecordedJob>): Promise<BoosterOutcome> {
    return this.outcomes.handle(job.data.observationId);
  }
}
