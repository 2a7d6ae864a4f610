import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { QUEUES } from './queue-names';

const QUIET_MS = 10_000;

/**
 * Every queue's connection errors (Redis down, reconnecting) go to the log, at most once per 10 s per queue, instead
 * of BullMQ's console.error on every reconnect attempt. /health says the same thing to the operator.
 */
@Injectable()
export class QueueErrorLogger implements OnModuleInit {
  private readonly logger = new Logger('Queues');
  private readonly lastLogged = new Map<string, number>();

  constructor(private readonly modules: ModuleRef) {}

  onModuleInit(): void {
    for (const name of Object.values(QUEUES)) {
      const queue = this.modules.get<Queue>(getQueueToken(name), { strict: false });
      queue.on('error', (error: Error) => this.log(name, error));
    }
  }

  private log(queue: string, error: Error): void {
    const now = Date.now();
    if (now - (this.lastLogged.get(queue) ?? 0) < QUIET_MS) return;
    this.lastLogged.set(queue, now);
    this.logger.warn({ msg: 'queue connection error', queue, error: error.message });
  }
}
