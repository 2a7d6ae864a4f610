import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Observation } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { outcomeScores, scoreCodes } from '@kc/followups';
import { ProtocolCatalog } from '@kc/protocols';
import { ScoreEventsProducer } from '@kc/queue';
import { PollCursors, type ChangePoll } from '../maintenance/change-polls';
import { pollFromCursor } from '../maintenance/cursor-poll';

/** Its cursor's key in Redis. */
const CURSOR = 'scores';

/**
 * Polling fallback for score Observations (the codes the protocols' outcome-driven timing reads): a server that
 * cannot notify still gets its boosters re-proposed.
 */
@Injectable()
export class ScorePoller implements ChangePoll {
  readonly name = 'scores';
  readonly cursors: string[];
  private readonly logger = new Logger(ScorePoller.name);
  private readonly codes: string[];

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: ScoreEventsProducer,
    private readonly pollCursors: PollCursors,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    catalog: ProtocolCatalog,
  ) {
    this.codes = scoreCodes({ scores: outcomeScores(catalog.planDefinitions()) });
    this.cursors = this.codes.length ? [CURSOR] : [];
  }

  async poll(): Promise<{ queued: number }> {
    if (!this.codes.length) return { queued: 0 };
    const { fresh } = await pollFromCursor(
      await this.pollCursors.of(CURSOR),
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
    return { queued: fresh.length };
  }

  /**
   * Every score of the lookback window, each version looked at once more whatever the cursor says: an event the API
   * accepted and Redis then lost (restarted without persistence, failed over) is not waited for until the next score.
   */
  async reconcile(now = Date.now()): Promise<{ checked: number }> {
    if (!this.codes.length) return { checked: 0 };
    const since = new Date(now - this.config.reconcileLookbackMs).toISOString();
    const recorded = await this.fhir.searchAll<Observation>('Observation', {
      code: this.codes.join(','),
      _lastUpdated: `ge${since}`,
      // Paged by cursor on Medplum's server, whose `_offset` stops at 10,000.
      _sort: '_lastUpdated',
      _count: 100,
    });
    for (const o of recorded) await this.producer.enqueueForReconciliation(o.id!, o.meta?.versionId ?? 'unknown');
    if (recorded.length) this.logger.log({ msg: 'reconciled recorded scores', checked: recorded.length });
    return { checked: recorded.length };
  }
}
