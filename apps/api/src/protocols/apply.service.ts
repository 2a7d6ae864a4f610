import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import type { ActivityDefinition, DetectedIssue, Patient, PlanDefinition, Resource } from '@medplum/fhirtypes';
import { isResourceId, notFound, unprocessable } from '@kc/common';
import { FhirClient, FhirNotFoundError } from '@kc/fhir';
import {
  applyPlanDefinition,
  flattenActions,
  ProtocolCatalog,
  UnsupportedElementError,
  type ApplyResult,
  type CanonicalResource,
  type DefinitionResolver,
  overriddenContraindications,
} from '@kc/protocols';
import type { ApplyRequest } from './apply-parameters';
import { PatientDataLoader } from '@kc/nest-core';
import { PlanWriter } from './plan-writer';

export interface AppliedPlan {
  result: ApplyResult;
  /** Server copies by fullUrl, when persisted. */
  persisted?: Map<string, Resource>;
}

/** A PlanDefinition and every definition it reaches, from the catalog or the FHIR server. */
export interface ResolvedPlan {
  plan: PlanDefinition;
  definitions: DefinitionResolver;
}

/**
 * $apply orchestration: find the protocol (fhir-profiles/, or any PlanDefinition on the FHIR server), read the
 * patient's data, run the pure engine, optionally persist in one transaction.
 */
@Injectable()
export class ApplyService {
  private readonly logger = new Logger(ApplyService.name);

  constructor(
    private readonly catalog: ProtocolCatalog,
    private readonly patients: PatientDataLoader,
    private readonly fhir: FhirClient,
    private readonly writer: PlanWriter,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'followUpOwner' | 'clinicTimeZone'>,
  ) {}

  /** By id, canonical url or url|version; the catalog first, then the FHIR server (a plan an EHR posted). */
  async findPlan(idOrCanonical: string | undefined): Promise<ResolvedPlan> {
    if (!idOrCanonical) throw notFound('planDefinition (or url) is required');
    const found = await this.knownPlan(idOrCanonical);
    if (!found)
      throw notFound(
        `Unknown PlanDefinition ${idOrCanonical}: not in the catalog (GET /protocols) nor on the FHIR server`,
      );
    return found;
  }

  /** The same, undefined when neither has it (a plan once applied inline, from the request's own PlanDefinition). */
  async knownPlan(idOrCanonical: string): Promise<ResolvedPlan | undefined> {
    const known = this.catalog.findPlanDefinition(idOrCanonical);
    if (known) return { plan: known, definitions: this.catalog };
    const plan = await this.fromServer(idOrCanonical);
    return plan ? this.withDefinitions(plan) : undefined;
  }

  /** A PlanDefinition given inline (the planDefinition resource parameter). */
  async inline(plan: PlanDefinition): Promise<ResolvedPlan> {
    return this.withDefinitions(plan);
  }

  async apply(resolved: ResolvedPlan, request: ApplyRequest, now = new Date()): Promise<AppliedPlan> {
    const started = performance.now();
    const { plan } = resolved;
    // A clinic routing Tasks by care team: the patient's teams, in the same batch as their data.
    const byCareTeam = this.config.followUpOwner === 'care-team';
    const {
      patient,
      data: patientData,
      careTeams,
    } = await this.patients.load(plan, request.patientId, {
      careTeams: byCareTeam,
    });
    if (!patient) throw notFound(`Patient/${request.patientId} does not exist on the FHIR server`);
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
        careTeams,
      }),
    );
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

  private async fromServer(idOrCanonical: string): Promise<PlanDefinition | undefined> {
    if (isResourceId(idOrCanonical)) {
      try {
        return await this.fhir.read<PlanDefinition>('PlanDefinition', idOrCanonical);
      } catch (err) {
        if (!(err instanceof FhirNotFoundError)) throw err;
        return undefined;
      }
    }
    return this.byCanonical<PlanDefinition>('PlanDefinition', idOrCanonical);
  }

  private async byCanonical<T extends CanonicalResource>(
    type: 'PlanDefinition' | 'ActivityDefinition',
    canonical: string,
  ): Promise<T | undefined> {
    const [url, version] = canonical.split('|');
    const found = await this.fhir.searchAll<T>(type, version ? { url, version } : { url });
    // Exactly this url: a server answering `url` as Medplum's matcher does (a substring: the embedded store) also
    // returns `<url>-v2` and the like.
    return found
      .filter((r) => r.url === url && (!version || r.version === version))
      .sort((a, b) => (b.version ?? '').localeCompare(a.version ?? ''))[0];
  }

  /** Fetches what a plan's definitionCanonicals name, recursively, so the pure engine resolves them without I/O. */
  private async withDefinitions(plan: PlanDefinition): Promise<ResolvedPlan> {
    const fetched: CanonicalResource[] = [];
    const pending = [plan];
    const seen = new Set<string>();
    while (pending.length) {
      const next = pending.pop()!;
      for (const action of flattenActions(next.action ?? [])) {
        const canonical = action.definitionCanonical;
        if (!canonical || seen.has(canonical) || this.catalog.resolve(canonical)) continue;
        seen.add(canonical);
        const type = canonical.includes('/PlanDefinition/') ? 'PlanDefinition' : 'ActivityDefinition';
        const found =
          (await this.byCanonical<ActivityDefinition | PlanDefinition>(type, canonical)) ??
          (await this.byCanonical(type === 'PlanDefinition' ? 'ActivityDefinition' : 'PlanDefinition', canonical));
        if (!found) continue; // the engine answers 422 naming the element
        fetched.push({ ...found, version: canonical.split('|')[1] ?? found.version });
        if (found.resourceType === 'PlanDefinition') pending.push(found);
      }
    }
    const local = new ProtocolCatalog(fetched);
    return {
      plan,
      definitions: { resolve: (canonical) => this.catalog.resolve(canonical) ?? local.resolve(canonical) },
    };
  }
}
