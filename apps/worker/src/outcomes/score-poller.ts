import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Observation, PlanDefinition } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { PlanDefinitions } from '@kc/nest-core';
import { outcomeScores, scoreCodes } from '@kc/followups';
import { ProtocolCatalog } from '@kc/protocols';
import { ScoreEventsProducer } from '@kc/queue';
import { PollCursors, type ChangePoll } from '../maintenance/change-polls';
import { pollFromCursor } from '../maintenance/cursor-poll';

/** Its cursor's key in Redis. */
const CURSOR = 'scores';

/**
 * Polling fallback for score Observations (the codes the protocols' outcome-driven timing reads: the catalog's, and
 * those of every PlanDefinition on the FHIR server, an EHR's own): a server that cannot notify still gets its boosters
 * re-proposed, whichever replica polls and however lately it started.
 */
@Injectable()
export class ScorePoller implements ChangePoll {
  readonly name = 'scores';
  readonly cursors: string[];
  private readonly logger = new Logger(ScorePoller.name);
  private readonly catalogPlans: PlanDefinition[];

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: ScoreEventsProducer,
    private readonly pollCursors: PollCursors,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly protocols: PlanDefinitions,
    catalog: ProtocolCatalog,
  ) {
    this.catalogPlans = catalog.planDefinitions();
    this.cursors = [CURSOR];
  }

  /** The score codes to ask for: the catalog's protocols', and those of every protocol on the FHIR server. */
  private async codes(): Promise<string[]> {
    return scoreCodes({ scores: outcomeScores([...this.catalogPlans, ...(await this.protocols.onServer())]) });
  }

  async poll(): Promise<{ queued: number }> {
    const codes = await this.codes();
    if (!codes.length) return { queued: 0 };
    const { fresh } = await pollFromCursor(
      await this.pollCursors.of(CURSOR),
      (from) =>
        this.fhir.searchAll<Observation>('Observation', {
          code: codes.join(','),
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
    const codes = await this.codes();
    if (!codes.length) return { checked: 0 };
    const since = new Date(now - this.config.reconcileLookbackMs).toISOString();
    const recorded = await this.fhir.searchAll<Observation>('Observation', {
      code: codes.join(','),
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
