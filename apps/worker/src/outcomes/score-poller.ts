import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { Observation } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { outcomeScores, scoreCodes } from '@kc/followups';
import { ProtocolCatalog } from '@kc/protocols';
import { QUEUES, ScoreEventsProducer } from '@kc/queue';
import { initCursor, pollCursor, pollFromCursor, type StoredCursor } from '../maintenance/cursor-poll';

/**
 * Polling fallback for score Observations (the codes the protocols' outcome-driven timing reads), on the same
 * schedule and with the same kind of cursor as the Procedure poll: a server that cannot notify still gets its
 * boosters re-proposed.
 */
@Injectable()
export class ScorePoller {
  private readonly logger = new Logger(ScorePoller.name);
  private readonly codes: string[];

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: ScoreEventsProducer,
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    catalog: ProtocolCatalog,
  ) {
    this.codes = scoreCodes({ scores: outcomeScores(catalog.planDefinitions()) });
  }

  private cursor(): Promise<StoredCursor> {
    return pollCursor(this.queue, this.config, 'scores');
  }

  async initCursor(): Promise<void> {
    if (this.codes.length) await initCursor(await this.cursor());
  }

  async poll(): Promise<{ enqueued: number }> {
    if (!this.codes.length) return { enqueued: 0 };
    const { fresh } = await pollFromCursor(
      await this.cursor(),
      (from) =>
        this.fhir.searchAll<Observation>('Observation', {
          code: this.codes.join(','),
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      async (observations) => {
        for (const o of observations) await this.producer.enqueue(o.id!, 'poll');
      },
    );
    if (fresh.length) this.logger.log({ msg: 'poll queued score events', count: fresh.length });
    return { enqueued: fresh.length };
  }
}
