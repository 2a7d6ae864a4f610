import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { Procedure } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { InfusionEventsProducer, QUEUES } from '@kc/queue';
import { parseCursor, searchFrom, startCursor, takeFresh, type PollCursor } from './poll-cursor';

/**
 * Polling fallback for FHIR servers without subscriptions: completed Procedures by _lastUpdated. The cursor lives
 * in Redis, so a restart resumes where it stopped. It is saved only after the events are queued: a crash in
 * between re-queues them (deduplicated by job id, and by the conditional creates) instead of losing them.
 */
@Injectable()
export class ProcedurePoller {
  private readonly logger = new Logger(ProcedurePoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: InfusionEventsProducer,
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private get cursorKey(): string {
    return `${this.config.queuePrefix}:poll-cursor:procedures`;
  }

  private get firstCursor(): PollCursor {
    return startCursor(this.config.pollSince ? new Date(this.config.pollSince) : new Date());
  }

  /**
   * Sets the starting point unless a cursor is already stored. Two workers starting together may both write it;
   * both write "now" (or POLL_SINCE), and the overlap window covers the difference.
   */
  async initCursor(): Promise<void> {
    const redis = await this.queue.client;
    if (!parseCursor(await redis.get(this.cursorKey)))
      await redis.set(this.cursorKey, JSON.stringify(this.firstCursor));
  }

  async poll(): Promise<{ enqueued: number; cursor: PollCursor }> {
    const redis = await this.queue.client;
    const cursor = parseCursor(await redis.get(this.cursorKey)) ?? this.firstCursor;
    const changed = await this.fhir.searchAll<Procedure>('Procedure', {
      status: 'completed',
      _lastUpdated: `ge${searchFrom(cursor, this.config.pollOverlapMs)}`,
      _sort: '_lastUpdated',
      _count: 100,
    });
    const { fresh, next } = takeFresh(cursor, changed, this.config.pollOverlapMs);
    for (const procedure of fresh) await this.producer.enqueue(procedure.id!, 'poll');
    await redis.set(this.cursorKey, JSON.stringify(next));
    if (fresh.length) this.logger.log({ msg: 'poll queued infusion events', count: fresh.length });
    return { enqueued: fresh.length, cursor: next };
  }

  /**
   * Every completed Procedure of the lookback window, queued again whatever the cursor says: Redis may have lost
   * accepted events (restarted without persistence, failed over). The job id makes this a no-op for infusions Redis
   * still remembers; for the others the follow-up job finds the Tasks by their keys and writes only what is missing.
   */
  async reconcile(now = Date.now()): Promise<{ checked: number }> {
    const since = new Date(now - this.config.reconcileLookbackMs).toISOString();
    const completed = await this.fhir.searchAll<Procedure>('Procedure', {
      status: 'completed',
      _lastUpdated: `ge${since}`,
      _count: 100,
    });
    for (const procedure of completed) await this.producer.enqueue(procedure.id!, 'poll');
    if (completed.length) this.logger.log({ msg: 'reconciled completed infusions', checked: completed.length });
    return { checked: completed.length };
  }
}
