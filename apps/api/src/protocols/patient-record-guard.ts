import { Injectable } from '@nestjs/common';
import type { Patient } from '@medplum/fhirtypes';
import { unprocessable } from '@kc/common';
import { FhirClient } from '@kc/fhir';
import { DECEASED_REFUSAL, isRecordedDeceased } from '@kc/followups';
import { replacedBy } from '@kc/protocols';
import { PatientRecordEventsProducer } from '@kc/queue';
import { linkedRecordsOf, recordReplacing, type PersonRecords } from '@kc/nest-core';

/**
 * What a patient's record must say before anything is authorised for them: not deceased (since session 44), under any
 * record of the same person it links (a merge, records kept apart: since session 48), and, for a decision on a plan's
 * Task, that the record is still on the FHIR server (since session 48). 422 otherwise.
 */
@Injectable()
export class PatientRecordGuard {
  constructor(
    private readonly records: PatientRecordEventsProducer,
    private readonly fhir: FhirClient,
  ) {}

  /**
   * Refused when the patient, or another record of the same person theirs links, is recorded as deceased: that one's
   * plans' job queued now (DeceasedPatients ends them), should the FHIR server not notify of Patients or the
   * notification not have run yet. The linked records are read only when there are some (one search a step), and not
   * when given (`links`, read by the patient data loader): what was read is returned, for the loader.
   */
  async assertNotDeceased(patient: Patient | undefined, links?: PersonRecords): Promise<PersonRecords | undefined> {
    if (!patient?.id) return undefined;
    const read = links ?? (await linkedRecordsOf(this.fhir, patient));
    const deceased = [patient, ...read.records].find(isRecordedDeceased);
    if (!deceased) return read;
    // A queue that is down leaves it to the Subscription and the poll; the refusal stands either way.
    await this.records.enqueue(`Patient/${deceased.id}`).catch(() => undefined);
    throw unprocessable(
      DECEASED_REFUSAL,
      ['Patient.deceased'],
      deceased === patient
        ? `Patient/${patient.id} is recorded as deceased`
        : `Patient/${deceased.id}, a record of the same person as Patient/${patient.id} (Patient.link), is recorded as deceased`,
    );
  }

  /**
   * Refused when the record a plan's Task is for is not on the FHIR server (deleted, or merged into another record and
   * deleted, whose `replaces` link names it): nothing is ordered for a record that is gone; its plan is applied again
   * to the record kept. Before session 48 the decision went ahead on no patient data (none could be read).
   */
  async assertRecordFound(reference: string | undefined, patient: Patient | undefined): Promise<void> {
    if (patient || !reference?.startsWith('Patient/')) return;
    // Not included by the server that answered the Task's read: read it.
    if (await this.fhir.readIfExists<Patient>('Patient', reference.slice('Patient/'.length))) return;
    const kept = await recordReplacing(this.fhir, reference);
    throw unprocessable(
      kept
        ? `The patient's record this plan is under was merged into another and deleted: apply the protocol to Patient/${kept.id}, and reject this task.`
        : "The patient's record this plan is under is no longer on the FHIR server: nothing is approved for it. Reject this task.",
      ['Task.for'],
      `${reference} not found${kept ? `; Patient/${kept.id} replaces it` : ''}`,
    );
  }

  /**
   * Refused when a plan is applied to a record merged into another (its `replaced-by` link; or deleted, the record kept
   * naming it): the plan belongs under the record kept, where the EHR charts from now on.
   */
  assertNotMergedAway(patient: Patient, mergedInto?: string): void {
    const kept = mergedInto ?? replacedBy(patient);
    if (!kept) return;
    throw unprocessable(
      `This patient's record was merged into another (${kept}): apply the protocol to that record.`,
      ['Patient.link'],
      `Patient/${patient.id} is replaced by ${kept}`,
    );
  }
}
