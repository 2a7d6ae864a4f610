import { Injectable } from '@nestjs/common';
import type { Patient } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { isRecordedDeceased } from '@kc/followups';
import { PatientRecordEventsProducer } from '@kc/queue';
import { PollCursors } from './change-polls';
import { QueuingPoll } from './queuing-poll';

/**
 * Polling fallback for patients recorded as deceased in the EHR (Patient.deceased[x]): those changed since the cursor,
 * each queued for its job (DeceasedPatients), which ends the plans this service follows for them. A patient with none
 * finds nothing to end.
 */
@Injectable()
export class DeceasedPatientsPoller extends QueuingPoll<Patient> {
  readonly name = 'deceasedPatients';
  protected readonly cursor = 'deceased-patients';
  protected readonly queuedWhat = 'patients recorded as deceased';

  constructor(
    private readonly fhir: FhirClient,
    private readonly records: PatientRecordEventsProducer,
    pollCursors: PollCursors,
  ) {
    super(pollCursors);
  }

  protected changedSince(from: string): Promise<Patient[]> {
    return this.fhir.searchAll<Patient>('Patient', {
      deceased: 'true',
      _lastUpdated: `ge${from}`,
      _sort: '_lastUpdated',
      _count: 100,
    });
  }

  protected enqueue(id: string): Promise<unknown> {
    return this.records.enqueue(`Patient/${id}`);
  }

  protected override keep(patient: Patient): boolean {
    return isRecordedDeceased(patient);
  }
}
