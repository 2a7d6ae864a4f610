import { Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { Gauge, Registry } from 'prom-client';
import { QUEUES } from '@kc/queue';

const STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized'] as const;

/** Queue depth per state, read from Redis at scrape time, so it is right whichever process runs the worker. */
@Injectable()
export class QueueMetrics {
  constructor(
    registry: Registry,
    @InjectQueue(QUEUES.followups) followups: Queue,
    @InjectQueue(QUEUES.maintenance) maintenance: Queue,
    @InjectQueue(QUEUES.reminders) reminders: Queue,
    @InjectQueue(QUEUES.outcomes) outcomes: Queue,
  ) {
    const queues = [followups, maintenance, reminders, outcomes];
    new Gauge({
      name: 'kc_queue_jobs',
      help: 'Jobs per queue and state',
      labelNames: ['queue', 'state'],
      registers: [registry],
      async collect() {
        for (const queue of queues) {
          const counts = await queue.getJobCounts(...STATES);
          for (const state of STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
        }
      },
    });
  }
}
