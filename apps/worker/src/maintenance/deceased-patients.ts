import { Injectable, Logger } from '@nestjs/common';
import type { CarePlan, Patient } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { ENDED_FOR_DEATH, isRecordedDeceased, planEndedForDeath } from '@kc/followups';
import { linkedRecordsOf } from '@kc/nest-core';
import { CAREPLAN_KEY_SYSTEM, personRecords } from '@kc/protocols';
import { OpenTasksReader } from './open-tasks';
import { PlanChanges } from './plan-changes';
import { serviceChangeEntries } from './withdrawal-writes';

/**
 * A patient the EHR recorded as deceased (notified, or found by the poll): each of their plans this service follows (one
 * $apply wrote, or one its open Tasks are under) still holding care is ended (planEndedForDeath) with a Provenance naming
 * the service and the Patient, If-Match on the plan read; then each is judged as a plan stopped in the EHR (PlanChanges),
 * so its open Tasks are withdrawn, their orders cancelled and their reminders revoked. Ids only in the logs. A plan
 * written meanwhile fails the job, whose retry reads again; a plan over already is left as it is.
 */
@Injectable()
export class DeceasedPatients {
  private readonly logger = new Logger(DeceasedPatients.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly openTasks: OpenTasksReader,
    private readonly planChanges: PlanChanges,
  ) {}

  async heard(patientId: string, now = new Date()): Promise<{ ended: number; withdrawn: number }> {
    const patient = await this.fhir.readIfExists<Patient>('Patient', patientId);
    if (!patient || !isRecordedDeceased(patient)) return { ended: 0, withdrawn: 0 };
    let ended = 0;
    let withdrawn = 0;
    // Under every record of the person (a merge may have left their plans under the record merged away: since session
    // 48; before, a death recorded on the record kept left those plans going).
    const { linked } = await linkedRecordsOf(this.fhir, patient);
    const records = personRecords(patientId, linked);
    for (const carePlan of await this.plansFollowed(records)) {
      const over = planEndedForDeath(carePlan, now);
      if (over) {
        await this.fhir.transaction(
          serviceChangeEntries(
            [{ resource: over, read: carePlan }],
            carePlan,
            {
              activity: 'end the plan of a patient recorded as deceased',
              reason: ENDED_FOR_DEATH,
              sources: [`Patient/${patientId}`],
            },
            now,
          ),
        );
        ended++;
      }
      // Ended now or before (by the EHR, or a job cut short after the write): what it still has open is withdrawn.
      // A plan the EHR stopped before keeps its post-infusion checks (carePlanHoldsTask): withdrawn now, with the patient.
      withdrawn += (await this.planChanges.planChanged(carePlan.id!, now, new Set(records))).withdrawn;
    }
    if (ended) this.logger.log({ msg: 'plans ended: patient recorded as deceased', patient: patientId, ended });
    return { ended, withdrawn };
  }

  /** The person's plans $apply wrote (its careplan-key), and those their open Tasks are under, under these records. */
  private async plansFollowed(records: string[]): Promise<CarePlan[]> {
    const patient = records.join(',');
    const [holding, open] = await Promise.all([
      this.fhir.searchAll<CarePlan>('CarePlan', { subject: patient, status: 'active,draft,on-hold', _count: 100 }),
      this.openTasks.read({ patient }),
    ]);
    const applied = holding.filter((p) => p.identifier?.some((i) => i.system === CAREPLAN_KEY_SYSTEM));
    const plans = new Map(applied.map((p) => [`CarePlan/${p.id}`, p]));
    for (const [ref, plan] of open.carePlans) if (!plans.has(ref)) plans.set(ref, plan);
    return [...plans.values()];
  }
}
