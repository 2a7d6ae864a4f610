import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Queue } from 'bullmq';
import { Roles } from '@kc/auth';
import { conflict, notFound } from '@kc/common';
import { QUEUES, whileQueueConnected, type InfusionCompletedJob } from '@kc/queue';

/** Jobs that used up their retries: what failed and why, and a way to try again once the cause is fixed. */
@ApiTags('operations')
@ApiBearerAuth()
@Roles('admin')
@Controller('operations/dead-letters')
export class DeadLettersController {
  constructor(@InjectQueue(QUEUES.followups) private readonly queue: Queue<InfusionCompletedJob>) {}

  @Get()
  @ApiOperation({ summary: 'Follow-up jobs that failed after their last attempt' })
  async list() {
    const failed = await whileQueueConnected(this.queue, () => this.queue.getFailed(0, 199));
    return failed.map((job) => ({
      jobId: job.id,
      procedure: `Procedure/${job.data.procedureId}`,
      source: job.data.source,
      attemptsMade: job.attemptsMade,
      failedReason: job.failedReason,
      failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : undefined,
    }));
  }

  @Post(':jobId/\\$retry')
  @HttpCode(202)
  @ApiOperation({ summary: 'Retry a dead-lettered job' })
  async retry(@Param('jobId') jobId: string) {
    return whileQueueConnected(this.queue, async () => {
      const job = await this.queue.getJob(jobId);
      if (!job) throw notFound(`No job ${jobId}`);
      if (!(await job.isFailed())) throw conflict(`Job ${jobId} is not in the failed state`);
      await job.retry();
      return { jobId, status: 'queued' };
    });
  }
}
