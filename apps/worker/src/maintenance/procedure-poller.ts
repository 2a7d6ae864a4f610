import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Procedure } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { InfusionEventsProducer, PatientRecordEventsProducer } from '@kc/queue';
import { PollCursors, type ChangePoll } from './change-polls';
import { pollFromCursor } from './cursor-poll';
import type { PollCursor } from './poll-cursor';

/** Its cursor's key in Redis. */
const CURSOR = 'procedures';

/**
 * Polling fallback for FHIR servers without subscriptions: completed Procedures by _lastUpdated (and those recorded in
 * error, for their plans to be held; either, re-timed after their follow-ups, for those to be counted again). The cursor lives
 * in Redis, so a restart resumes where it stopped (cursor-poll: saved only after the events are queued).
 */
@Injectable()
export class ProcedurePoller implements ChangePoll {
  readonly name = 'infusions';
  readonly cursors = [CURSOR];
  private readonly logger = new Logger(ProcedurePoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: InfusionEventsProducer,
    private readonly records: PatientRecordEventsProducer,
    private readonly pollCursors: PollCursors,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async poll(): Promise<{ queued: number; cursor: PollCursor }> {
    const { fresh, next } = await pollFromCursor(
      await this.pollCursors.of(CURSOR),
      (from) =>
        this.fhir.searchAll<Procedure>('Procedure', {
          // An infusion recorded in error since (after its follow-ups) holds its plan: its own job, not the infusion's.
          status: 'completed,entered-in-error',
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      async (procedures) => {
        for (const procedure of procedures) {
          if (procedure.status === 'completed') await this.producer.enqueue(procedure.id!, 'poll');
          // Recorded in error, or re-timed, after its follow-ups (the record's job reads its history to tell).
          await this.records.enqueue(`Procedure/${procedure.id}`);
        }
      },
    );
    if (fresh.length) this.logger.log({ msg: 'poll queued infusion events', count: fresh.length });
    return { queued: fresh.length, cursor: next };
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
