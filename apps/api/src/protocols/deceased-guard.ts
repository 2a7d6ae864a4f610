import { Injectable } from '@nestjs/common';
import type { Patient } from '@medplum/fhirtypes';
import { unprocessable } from '@kc/common';
import { DECEASED_REFUSAL, isRecordedDeceased } from '@kc/followups';
import { PatientRecordEventsProducer } from '@kc/queue';

/**
 * Nothing is authorised for a patient recorded as deceased (since session 44): 422, and their plans' job queued now
 * (DeceasedPatients ends them), should the FHIR server not notify of Patients or the notification not have run yet.
 */
@Injectable()
export class DeceasedGuard {
  constructor(private readonly records: PatientRecordEventsProducer) {}

  async assertNotDeceased(patient: Patient | undefined): Promise<void> {
    if (!patient?.id || !isRecordedDeceased(patient)) return;
    // A queue that is down leaves it to the Subscription and the poll; the refusal stands either way.
    await this.records.enqueue(`Patient/${patient.id}`).catch(() => undefined);
    throw unprocessable(DECEASED_REFUSAL, ['Patient.deceased'], `Patient/${patient.id} is recorded as deceased`);
  }
}
