import { Injectable, Logger } from '@nestjs/common';
import type { Patient } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { isRecordedDeceased } from '@kc/followups';
import { PatientRecordEventsProducer } from '@kc/queue';
import { PollCursors, type ChangePoll } from './change-polls';
import { queueChangedSince } from './cursor-poll';

/** Its cursor's key in Redis. */
const CURSOR = 'deceased-patients';

/**
 * Polling fallback for patients recorded as deceased in the EHR (Patient.deceased[x]): those changed since the cursor,
 * each queued for its job (DeceasedPatients), which ends the plans this service follows for them. A patient with none
 * finds nothing to end.
 */
@Injectable()
export class DeceasedPatientsPoller implements ChangePoll {
  readonly name = 'deceasedPatients';
  readonly cursors = [CURSOR];
  private readonly logger = new Logger(DeceasedPatientsPoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly records: PatientRecordEventsProducer,
    private readonly pollCursors: PollCursors,
  ) {}

  async poll(): Promise<{ queued: number }> {
    const queued = await queueChangedSince(
      await this.pollCursors.of(CURSOR),
      (from) =>
        this.fhir.searchAll<Patient>('Patient', {
          deceased: 'true',
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      (id) => this.records.enqueue(`Patient/${id}`),
      (patient) => isRecordedDeceased(patient),
    );
    if (queued) this.logger.log({ msg: 'poll queued patients recorded as deceased', count: queued });
    return { queued };
  }
}
