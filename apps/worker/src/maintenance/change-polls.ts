import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { QUEUES } from '@kc/queue';
import { initCursor, pollCursor, type StoredCursor } from './cursor-poll';

/**
 * A polling fallback for what other systems change on the FHIR server (a server that cannot notify, such as the
 * embedded one, or a notification lost): each run of the poll job runs every one, in CHANGE_POLLS' order, each from
 * cursors of its own in Redis.
 */
export interface ChangePoll {
  /** Its key in the poll job's result (`infusions`, `scores`). */
  readonly name: string;
  /** The cursors it keeps (none when it has nothing to poll: no score codes in the protocols, say). */
  readonly cursors: readonly string[];
  /** What changed since its cursors, queued for their jobs: how many (`queued`), and whatever else it reports. */
  poll(): Promise<{ queued: number }>;
}

/** Every ChangePoll, in the order the poll job runs them (worker.module lists them). */
export const CHANGE_POLLS = Symbol('CHANGE_POLLS');

/** The polls' cursors, in the maintenance queue's Redis (cursor-poll decides what is fresh). */
@Injectable()
export class PollCursors {
  constructor(
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** One poll's cursor, by name: a first poll starts now, or at POLL_SINCE. */
  of(name: string): Promise<StoredCursor> {
    return pollCursor(this.queue, this.config, name);
  }

  /** A cursor the 15-minute sweep keeps (what changed since its last run), apart from the polls'. */
  ofSweep(name: string): Promise<StoredCursor> {
    return pollCursor(this.queue, this.config, name, 'sweep');
  }

  /**
   * The poll's cursors set to start now (or at POLL_SINCE) unless already stored: polling must not turn years of old
   * infusions into Tasks, and a restart resumes where the last poll stopped.
   */
  async start(poll: ChangePoll): Promise<void> {
    for (const name of poll.cursors) await initCursor(await this.of(name));
  }
}
