import { Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { JOBS, QUEUES, withinEnqueueTimeout } from '@kc/queue';

/** Asks the worker to poll now (HAPI's empty rest-hook says "something changed" without saying what). */
@Injectable()
export class PollTrigger {
  constructor(@InjectQueue(QUEUES.maintenance) private readonly queue: Queue) {}

  async pollNow(): Promise<void> {
    // Deduplicated: a burst of empty notifications while one poll is pending queues one poll.
    await withinEnqueueTimeout(
      this.queue.add(
        JOBS.pollProcedures,
        {},
        { deduplication: { id: 'poll-now' }, removeOnComplete: true, removeOnFail: 100 },
      ),
    );
  }
}
