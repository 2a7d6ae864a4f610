import { Injectable, Logger } from '@nestjs/common';
import type { PlanDefinition, Resource } from '@medplum/fhirtypes';
import { notFound } from '@kc/common';
import { FhirClient } from '@kc/fhir';
import { applyPlanDefinition, ProtocolCatalog, type ApplyResult } from '@kc/protocols';
import type { ApplyRequest } from './apply-parameters';
import { transactionBundle } from './apply-result-parameters';
import { PatientDataLoader } from './patient-data-loader';

export interface AppliedPlan {
  result: ApplyResult;
  /** Server copies by fullUrl, when persisted. */
  persisted?: Map<string, Resource>;
}

/** $apply orchestration: find the protocol, read the patient's data, run the pure engine, optionally persist. */
@Injectable()
export class ApplyService {
  private readonly logger = new Logger(ApplyService.name);

  constructor(
    private readonly catalog: ProtocolCatalog,
    private readonly patients: PatientDataLoader,
    private readonly fhir: FhirClient,
  ) {}

  findPlan(idOrCanonical: string | undefined): PlanDefinition {
    const plan = idOrCanonical ? this.catalog.findPlanDefinition(idOrCanonical) : undefined;
    if (!plan)
      throw notFound(
        idOrCanonical ? `Unknown protocol ${idOrCanonical}; GET /protocols lists them` : 'planDefinition is required',
      );
    return plan;
  }

  async apply(plan: PlanDefinition, request: ApplyRequest, now = new Date()): Promise<AppliedPlan> {
    const started = performance.now();
    if (!(await this.patients.patient(request.patientId)))
      throw notFound(`Patient/${request.patientId} does not exist on the FHIR server`);
    const patientData = await this.patients.load(plan, request.patientId);
    const result = applyPlanDefinition({
      plan,
      catalog: this.catalog,
      patientId: request.patientId,
      patientData,
      startDate: request.startDate ?? now,
      now,
    });
    const persisted = request.persist ? await this.persist(result) : undefined;
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

  private async persist(result: ApplyResult): Promise<Map<string, Resource>> {
    const bundle = transactionBundle(result);
    const response = await this.fhir.transaction(bundle.entry!);
    const byFullUrl = new Map<string, Resource>();
    const entries = bundle.entry!;
    await Promise.all(
      (response.entry ?? []).map(async (entry, i) => {
        const resource = entry.resource ?? (await this.readLocation(entry.response?.location));
        if (resource) byFullUrl.set(entries[i].fullUrl!, resource);
      }),
    );
    return byFullUrl;
  }

  private async readLocation(location: string | undefined): Promise<Resource | undefined> {
    const match = location && /([A-Za-z]+)\/([^/]+)/.exec(location);
    return match ? this.fhir.read(match[1] as Resource['resourceType'], match[2]) : undefined;
  }
}
