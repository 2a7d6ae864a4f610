import { Inject, Injectable, Logger } from '@nestjs/common';
import type { CarePlan, Communication, Patient } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, includedOf, matchesOf } from '@kc/fhir';
import {
  DEATH_RECORD_CORRECTED,
  ENDED_FOR_DEATH,
  ENDED_FOR_DEATH_TAG_SEARCH,
  isEndedForDeath,
  isRecordedDeceased,
  planOfDeathTakenBack,
} from '@kc/followups';
import {
  deathTakenBackAlertKey,
  deathTakenBackAlertMessage,
  deathTakenBackAlertRecord,
  type DeathTakenBackAlert,
} from '@kc/protocols';
import { linkedRecordsOf } from '@kc/nest-core';
import { AlertDelivery } from '../alerts/alert-delivery';
import { serviceChangeEntries } from './withdrawal-writes';

/**
 * Plans ended because the EHR recorded their patient as deceased (DeceasedPatients; tagged so), whose patient it no
 * longer records so: a death recorded in error, taken back. The plan stays ended (what it held was withdrawn, and only a
 * clinician knows what the patient's care is now); the clinic is told, by each of its channels once (AlertDelivery),
 * and then the plan's note says so, its tag changed so that it is told once (If-Match, with a Provenance naming the
 * service and the Patient). Looked at by the 15-minute sweep: a correction is not notified (the Subscription is on
 * deceased patients). Since session 46; before, nobody was told and the patient's care silently stopped.
 */
@Injectable()
export class DeathsTakenBack {
  private readonly logger = new Logger(DeathsTakenBack.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly delivery: AlertDelivery,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  /**
   * One search of the plans ended for a death, with their patients (a clinic's deaths of enrolled patients: few). A
   * plan whose telling fails is logged and left for the next sweep. How many plans were found taken back and told.
   */
  async lookAgain(now = new Date()): Promise<{ deathsTakenBack: number }> {
    const plans: CarePlan[] = [];
    const patients = new Map<string, Patient>();
    for await (const page of this.fhir.searchPages<CarePlan>('CarePlan', {
      _tag: ENDED_FOR_DEATH_TAG_SEARCH,
      status: 'revoked',
      _include: 'CarePlan:subject',
      _count: 100,
    })) {
      plans.push(...matchesOf<CarePlan>(page));
      for (const patient of includedOf<Patient>(page, 'Patient')) patients.set(`Patient/${patient.id}`, patient);
    }
    // The other records of the same person, at any step (a merge: the death may be recorded on the record kept, the
    // plan under the one merged away; since session 48, and past the first step since 49): read only for a patient
    // not recorded deceased whose record links others (linkedRecordsOf: one search per step).
    const personDeceased = async (patient: Patient) =>
      isRecordedDeceased(patient) || (await linkedRecordsOf(this.fhir, patient)).records.some(isRecordedDeceased);
    let deathsTakenBack = 0;
    for (const plan of plans) {
      // A patient gone from the server (deleted) is not one whose death was taken back.
      const patient = patients.get(plan.subject?.reference ?? '');
      if (!plan.id || !patient || !isEndedForDeath(plan) || (await personDeceased(patient))) continue;
      try {
        await this.takenBack(plan as CarePlan & { id: string }, now);
        deathsTakenBack++;
      } catch (err) {
        this.logger.warn({
          msg: 'plan ended for a death taken back: not told yet; the next sweep tries again',
          carePlan: plan.id,
          error: String(err),
        });
      }
    }
    return { deathsTakenBack };
  }

  private async takenBack(plan: CarePlan & { id: string }, now: Date): Promise<void> {
    const alert: DeathTakenBackAlert = {
      carePlan: plan,
      endedAt: plan.note?.findLast((n) => n.text === ENDED_FOR_DEATH)?.time,
    };
    const channels = this.delivery.channels();
    const told = channels.length
      ? await this.delivery.recordsOf(channels.map((c) => deathTakenBackAlertKey(alert, c.channel)))
      : new Map<string, Communication>();
    const context = { worklistUrl: this.delivery.worklistUrl(), zone: this.config.clinicTimeZone };
    const { failed } = await this.delivery.deliverUntold(told, {
      kind: 'death-taken-back',
      key: (channel) => deathTakenBackAlertKey(alert, channel),
      message: (channel) => deathTakenBackAlertMessage(alert, { ...context, channel }),
      record: (message, how) => deathTakenBackAlertRecord(alert, message, how),
      about: { carePlan: plan.id },
      retriedBy: 'the sweep',
      now,
    });
    // Not told by every channel: the plan keeps its tag, and the next sweep tells the rest.
    if (failed) throw failed;
    const noted = planOfDeathTakenBack(plan, now)!;
    await this.fhir.transaction(
      serviceChangeEntries(
        [{ resource: noted, read: plan }],
        plan,
        {
          activity: 'note that the death which ended the plan was taken back',
          reason: DEATH_RECORD_CORRECTED,
          sources: plan.subject.reference ? [plan.subject.reference] : [],
        },
        now,
      ),
    );
    this.logger.log({ msg: 'plan ended for a death since taken back: clinic told', carePlan: plan.id });
  }
}
