import { Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { Gauge, Registry } from 'prom-client';
import { QUEUES, whileQueueConnected } from '@kc/queue';

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
      // With Redis down the series are absent (not stale), and the scrape still answers: its connection would hold
      // the count until Redis is back, and /metrics with it, when an operator needs it most.
      async collect() {
        try {
          const counts = await Promise.all(
            queues.map((queue) => whileQueueConnected(queue, () => queue.getJobCounts(...STATES))),
          );
          queues.forEach((queue, i) => {
            for (const state of STATES) this.set({ queue: queue.name, state }, counts[i][state] ?? 0);
          });
        } catch {
          this.reset();
        }
      },
    });
  }
}
