import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { Procedure } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { InfusionEventsProducer, QUEUES } from '@kc/queue';
import { initCursor, pollCursor, pollFromCursor, type StoredCursor } from './cursor-poll';
import type { PollCursor } from './poll-cursor';

/**
 * Polling fallback for FHIR servers without subscriptions: completed Procedures by _lastUpdated. The cursor lives
 * in Redis, so a restart resumes where it stopped (cursor-poll: saved only after the events are queued).
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

  private cursor(): Promise<StoredCursor> {
    return pollCursor(this.queue, this.config, 'procedures');
  }

  async initCursor(): Promise<void> {
    await initCursor(await this.cursor());
  }

  async poll(): Promise<{ enqueued: number; cursor: PollCursor }> {
    const { fresh, next } = await pollFromCursor(
      await this.cursor(),
      (from) =>
        this.fhir.searchAll<Procedure>('Procedure', {
          status: 'completed',
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      async (procedures) => {
        for (const procedure of procedures) await this.producer.enqueue(procedure.id!, 'poll');
      },
    );
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
      // Paged by cursor on Medplum's server, whose `_offset` stops at 10,000.
      _sort: '_lastUpdated',
      _count: 100,
    });
    for (const procedure of completed) await this.producer.enqueue(procedure.id!, 'poll');
    if (completed.length) this.logger.log({ msg: 'reconciled completed infusions', checked: completed.length });
    return { checked: completed.length };
  }
}
