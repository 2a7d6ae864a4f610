import { Injectable } from '@nestjs/common';
import type { MedicationAdministration } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { CompletedTaskEventsProducer } from '@kc/queue';
import { PollCursors } from '../maintenance/change-polls';
import { QueuingPoll } from '../maintenance/queuing-poll';

/**
 * Polling fallback for administrations recorded at the pump or in the eMAR: those changed since the cursor, each
 * queued for its job (LateAdministrations), which proposes the sessions awaiting approval after its infusion again at
 * the rate it records. One recorded before its infusion's follow-ups changes nothing there.
 */
@Injectable()
export class AdministrationsPoller extends QueuingPoll<MedicationAdministration> {
  readonly name = 'administrations';
  protected readonly cursor = 'administrations';
  protected readonly queuedWhat = 'administrations';

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    pollCursors: PollCursors,
  ) {
    super(pollCursors);
  }

  protected changedSince(from: string): Promise<MedicationAdministration[]> {
    // What records a rate given (or takes one back: entered in error), not what was only planned or not done.
    return this.fhir.searchAll<MedicationAdministration>('MedicationAdministration', {
      status: 'completed,in-progress,entered-in-error',
      _lastUpdated: `ge${from}`,
      _sort: '_lastUpdated',
      _count: 100,
    });
  }

  protected enqueue(id: string): Promise<unknown> {
    return this.producer.enqueueAdministration(id);
  }
}
