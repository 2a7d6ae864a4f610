import { Injectable } from '@nestjs/common';
import type { CarePlan, DetectedIssue, PlanDefinition } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { APPLY_KEY_SYSTEM, contraindicationsToRecord, type DefinitionResolver } from '@kc/protocols';
import { PatientDataLoader, type PatientData } from './patient-data-loader';

/** A plan's patient to check, for the actions of its Tasks awaiting a decision. */
export interface ContraindicationCheck {
  plan: PlanDefinition;
  resolver: DefinitionResolver;
  carePlan: CarePlan;
  patientId: string;
  actionIds: string[];
  /** The DetectedIssues implicating the plan, as read with it. */
  issues: DetectedIssue[];
  /** Where it is found, for each issue's detail ("when a clinician was to approve “Next induction session”"). */
  foundWhen: string;
}

/**
 * The contraindication checks asked again on a patient's data as it is now (the approval's re-check, the worker's
 * sweep and its notifications): the data the protocol's inputs declare is read in one batch, and each contraindication
 * found that gates the actions, is not overridden and is not on record yet becomes the plan's DetectedIssue (a
 * conditional create on its key, so two finders record it once).
 */
@Injectable()
export class ContraindicationRecorder {
  constructor(
    private readonly fhir: FhirClient,
    private readonly patients: PatientDataLoader,
  ) {}

  /** The DetectedIssues recorded for what was found (none when the plan is clear, or the patient is gone). */
  async record(check: ContraindicationCheck, now = new Date()): Promise<{ issue: DetectedIssue; created: boolean }[]> {
    return this.recordOn(check, await this.patients.load(check.plan, check.patientId), now);
  }

  /** As record, on the patient's data already read (an approval reads it once, for the checks and the dose). */
  async recordOn(
    check: ContraindicationCheck,
    { patient, data }: PatientData,
    now = new Date(),
  ): Promise<{ issue: DetectedIssue; created: boolean }[]> {
    if (!patient) return [];
    const toRecord = contraindicationsToRecord({
      ...check,
      variables: { ...data, subject: patient, patient, context: patient, resource: check.plan },
      now,
    });
    const recorded: { issue: DetectedIssue; created: boolean }[] = [];
    for (const { resource, key } of toRecord) {
      const { resource: issue, created } = await this.fhir.create(resource, {
        ifNoneExist: { identifier: `${APPLY_KEY_SYSTEM}|${key}` },
      });
      recorded.push({ issue, created });
    }
    return recorded;
  }
}
