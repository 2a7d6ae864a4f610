import { Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import { JOBS, type BulkExportJob } from '@kc/queue';
import { MeteredWorkerHost } from '../metered-worker-host';
import { QueueJobMetrics } from '../queue-job-metrics';
import { BulkExportDeletion } from './bulk-export-deletion';
import { BulkExportWriter } from './bulk-export-writer';

/** Queue mechanics only: an export to write (its progress on the job, for the dashboard), or its files to delete. */
@Injectable()
export class BulkExportProcessor extends MeteredWorkerHost {
  constructor(
    private readonly writer: BulkExportWriter,
    private readonly deletion: BulkExportDeletion,
    queueMetrics: QueueJobMetrics,
  ) {
    super(queueMetrics);
  }

  async process(job: Job<BulkExportJob>): Promise<unknown> {
    if (job.name === JOBS.deleteBulkExport) return { deleted: await this.deletion.delete(job.data.exportId) };
    try {
      return await this.writer.write(job.data.exportId, (percent) => job.updateProgress(percent));
    } catch (err) {
      // Its last attempt: the client's status request says it failed (a FHIR server's refusal; no patient data).
      if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1))
        await this.writer.failed(job.data.exportId, err instanceof Error ? err.message : String(err));
      throw err;
    }
  }
}
