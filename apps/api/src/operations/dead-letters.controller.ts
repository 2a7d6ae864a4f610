import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Queue } from 'bullmq';
import { Roles } from '@kc/auth';
import { conflict, notFound } from '@kc/common';
import { DeadLetters, QUEUES, whileQueueConnected } from '@kc/queue';

/**
 * Jobs of every queue that used up their retries: what failed and why, when the worker tries each again by itself,
 * and a way to try again now once the cause is fixed.
 */
@ApiTags('operations')
@ApiBearerAuth()
@Roles('admin')
@Controller('operations/dead-letters')
export class DeadLettersController {
  constructor(
    // Whether Redis answers (every queue shares its connection settings).
    @InjectQueue(QUEUES.followups) private readonly queue: Queue,
    private readonly deadLetters: DeadLetters,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Jobs of every queue that failed after their last attempt, newest first (200 at most)' })
  list() {
    return whileQueueConnected(this.queue, () => this.deadLetters.list());
  }

  @Post(':jobId/\\$retry')
  @HttpCode(202)
  @ApiOperation({ summary: 'Retry a dead-lettered job now, with all its attempts' })
  async retry(@Param('jobId') jobId: string) {
    const result = await whileQueueConnected(this.queue, () => this.deadLetters.retry(jobId));
    if (result === 'not-found') throw notFound(`No job ${jobId}`);
    if (result === 'not-failed') throw conflict(`Job ${jobId} is not in the failed state`);
    return { jobId, status: 'queued' };
  }
}
