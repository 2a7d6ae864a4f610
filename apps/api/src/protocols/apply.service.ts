import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import type { CarePlan, DetectedIssue, Patient, PlanDefinition, Resource } from '@medplum/fhirtypes';
import { conflict, notFound, unprocessable } from '@kc/common';
import { FhirClient } from '@kc/fhir';
import {
  applyPlanDefinition,
  CAREPLAN_KEY_SYSTEM,
  UnsupportedElementError,
  type ApplyResult,
  overriddenContraindications,
} from '@kc/protocols';
import type { ApplyRequest } from './apply-parameters';
import { PatientDataLoader, PlanDefinitions, type ResolvedPlan } from '@kc/nest-core';
import { InlinePlanDefinitions } from './inline-plan-definitions';
import { PatientRecordGuard } from './patient-record-guard';
import { PlanWriter } from './plan-writer';

export interface AppliedPlan {
  result: ApplyResult;
  /** Server copies by fullUrl, when persisted. */
  persisted?: Map<string, Resource>;
}

/**
 * $apply orchestration: find the protocol (fhir-profiles/, or any PlanDefinition on the FHIR server), read the
 * patient's data, run the pure engine, optionally persist in one transaction.
 */
@Injectable()
export class ApplyService {
  private readonly logger = new Logger(ApplyService.name);

  constructor(
    private readonly patients: PatientDataLoader,
    private readonly fhir: FhirClient,
    private readonly writer: PlanWriter,
    private readonly definitions: PlanDefinitions,
    private readonly inlinePlans: InlinePlanDefinitions,
    private readonly patientRecord: PatientRecordGuard,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'followUpOwner' | 'clinicTimeZone'>,
  ) {}

  /** By id, canonical url or url|version; the catalog first, then the FHIR server (a plan an EHR posted). */
  async findPlan(idOrCanonical: string | undefined): Promise<ResolvedPlan> {
    if (!idOrCanonical) throw notFound('planDefinition (or url) is required');
    const found = await this.definitions.find(idOrCanonical);
    if (!found)
      throw notFound(
        `Unknown PlanDefinition ${idOrCanonical}: not in the catalog (GET /protocols) nor on the FHIR server`,
      );
    return found;
  }

  /**
   * A PlanDefinition given inline (the planDefinition resource parameter). Persisted, its plan must be checked again
   * (approvals, the sweep, an override's regeneration): the definition is stored on the FHIR server first.
   */
  async inline(plan: PlanDefinition, persist: boolean): Promise<ResolvedPlan> {
    if (persist) await this.inlinePlans.keep(plan);
    return this.definitions.withDefinitions(plan);
  }

  /**
   * A patient enrolled ($apply): as apply, on a protocol still in use. One withdrawn from use (FHIR's `retired`)
   * enrols nobody; the plans applied before keep following it (their follow-ups, approvals and proposals after an
   * override apply it again through apply).
   */
  async enrol(resolved: ResolvedPlan, request: ApplyRequest): Promise<AppliedPlan> {
    const { plan } = resolved;
    if (plan.status === 'retired')
      throw unprocessable(
        `${plan.title ?? plan.name ?? 'This protocol'} is retired: no patient is enrolled on it any more (care plans applied before keep following it). Apply the protocol that replaces it.`,
        ['PlanDefinition.status'],
        `${plan.url ?? `PlanDefinition/${plan.id}`}${plan.version ? `|${plan.version}` : ''} has status retired`,
      );
    return this.apply(resolved, request, new Date(), { enrolling: true });
  }

  /**
   * `enrolling`: a new enrolment ($apply), persisted, is refused while the patient has another plan of this protocol
   * still holding care (secondEnrolment); a plan applied again (an override's regeneration) is not one.
   */
  async apply(
    resolved: ResolvedPlan,
    request: ApplyRequest,
    now = new Date(),
    { enrolling = false }: { enrolling?: boolean } = {},
  ): Promise<AppliedPlan> {
    const started = performance.now();
    const { plan } = resolved;
    // A clinic routing Tasks by care team: the patient's teams, in the same batch as their data.
    const byCareTeam = this.config.followUpOwner === 'care-team';
    const {
      patient,
      data: patientData,
      careTeams,
      plansHoldingCare,
      mergedInto,
      links,
    } = await this.patients.load(plan, request.patientId, {
      careTeams: byCareTeam,
      plans: enrolling && request.persist,
    });
    if (!patient) throw notFound(`Patient/${request.patientId} does not exist on the FHIR server`);
    this.patientRecord.assertNotMergedAway(patient, mergedInto);
    await this.patientRecord.assertNotDeceased(patient, links);
    const result = this.run(() =>
      applyPlanDefinition({
        plan,
        definitions: resolved.definitions,
        patient: patient as Patient & { id: string },
        patientData,
        startDate: request.startDate ?? now,
        now,
        zone: this.config.clinicTimeZone,
        context: request.context,
        overridden: request.overridden,
        carePlanKey: request.carePlanKey,
        careTeams,
      }),
    );
    const enrolled = plansHoldingCare && secondEnrolment(result, plansHoldingCare);
    if (enrolled) throw enrolledAlready(enrolled, plan.title ?? plan.name);
    const persisted = request.persist ? await this.writer.write(result) : undefined;
    this.logger.log({
      msg: '$apply',
      plan: plan.id,
      eligible: result.eligible,
      tasks: result.tasks.length,
      persisted: request.persist,
      ms: Math.round(performance.now() - started),
    });
    return { result, persisted };
  }

  /** Contraindication codes a clinician overrode on a CarePlan (mitigated DetectedIssues implicating it). */
  async overriddenOn(carePlanId: string): Promise<Set<string>> {
    return overriddenContraindications(
      await this.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${carePlanId}` }),
    );
  }

  private run<T>(apply: () => T): T {
    try {
      return apply();
    } catch (err) {
      if (err instanceof UnsupportedElementError) throw unprocessable(err.message, [err.element]);
      throw err;
    }
  }
}

/**
 * Another plan of the same protocol (its canonical url, any version) still holding care for the patient, that this
 * $apply is not (a different start date: another key). Two would propose two sessions at once, each approved and
 * ordered on its own (since session 44 refused; before, a second enrolment ran beside the first). The same $apply sent
 * again (its key) is the same plan, answered as before.
 */
function secondEnrolment(result: ApplyResult, holding: CarePlan[]): CarePlan | undefined {
  const key = result.carePlan.resource.identifier?.find((i) => i.system === CAREPLAN_KEY_SYSTEM)?.value;
  const url = result.carePlan.resource.instantiatesCanonical?.[0]?.split('|')[0];
  if (!url) return undefined;
  return holding.find(
    (p) =>
      p.instantiatesCanonical?.some((c) => c.split('|')[0] === url) &&
      !p.identifier?.some((i) => i.system === CAREPLAN_KEY_SYSTEM && i.value === key),
  );
}

/** 409: enrolled already, naming the plan; the clinician stops it first, or keeps following it. */
function enrolledAlready(plan: CarePlan, protocol: string | undefined): Error {
  return conflict(
    `The patient is already enrolled on ${protocol ?? 'this protocol'} (CarePlan/${plan.id}, ${plan.status}${
      plan.period?.start ? `, from ${plan.period.start.slice(0, 10)}` : ''
    }): two plans of it would propose two sessions at once. Stop that plan first, or keep following it.`,
    409,
    ['subject'],
  );
}
