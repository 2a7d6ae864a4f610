import { Injectable, Logger } from '@nestjs/common';
import type { MedicationAdministration } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { CompletedTaskEventsProducer } from '@kc/queue';
import { PollCursors, type ChangePoll } from '../maintenance/change-polls';
import { queueChangedSince } from '../maintenance/cursor-poll';

/** Its cursor's key in Redis. */
const CURSOR = 'administrations';

/**
 * Polling fallback for administrations recorded at the pump or in the eMAR: those changed since the cursor, each
 * queued for its job (LateAdministrations), which proposes the sessions awaiting approval after its infusion again at
 * the rate it records. One recorded before its infusion's follow-ups changes nothing there.
 */
@Injectable()
export class AdministrationsPoller implements ChangePoll {
  readonly name = 'administrations';
  readonly cursors = [CURSOR];
  private readonly logger = new Logger(AdministrationsPoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    private readonly pollCursors: PollCursors,
  ) {}

  async poll(): Promise<{ queued: number }> {
    const queued = await queueChangedSince(
      await this.pollCursors.of(CURSOR),
      (from) =>
        // What records a rate given (or takes one back: entered in error), not what was only planned or not done.
        this.fhir.searchAll<MedicationAdministration>('MedicationAdministration', {
          status: 'completed,in-progress,entered-in-error',
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      (id) => this.producer.enqueueAdministration(id),
    );
    if (queued) this.logger.log({ msg: 'poll queued administrations', count: queued });
    return { queued };
  }
}
