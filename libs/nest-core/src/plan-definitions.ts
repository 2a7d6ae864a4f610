import { Injectable, Logger, Optional } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';
import type { ActivityDefinition, CarePlan, PlanDefinition, Questionnaire, Task } from '@medplum/fhirtypes';
import { isResourceId } from '@kc/common';
import { FhirClient, FhirNotFoundError, matchesOf, searchEach, type NamedSearch } from '@kc/fhir';
import { RecentReads } from './recent-reads';
import { ServerPlanList } from './server-plan-list';
import {
  collectWithOf,
  flattenActions,
  ProtocolCatalog,
  protocolActionOf,
  questionnaireCanonicalOf,
  type CanonicalResource,
  type ResolvedPlan,
} from '@kc/protocols';

export type { ResolvedPlan } from '@kc/protocols';

/** How long a plan read from the FHIR server is reused: a sweep over many plans of one EHR protocol reads it once. */
const SERVER_PLAN_TTL_MS = 30_000;
const MAX_CACHED = 200;

/**
 * Where a protocol's definition is found again: the catalog (fhir-profiles/) first, then the FHIR server (a
 * PlanDefinition an EHR posted, or one sent inline to a persisted $apply, which stores it there). Whatever reads the
 * protocol a CarePlan instantiates (contraindication checks, follow-ups, reminders, boosters, checks, the page) reads
 * it through this, so an EHR's protocol is held to the same rules as the catalog's.
 */
@Injectable()
export class PlanDefinitions {
  private readonly logger = new Logger(PlanDefinitions.name);
  private readonly plans = new RecentReads<ResolvedPlan | undefined>(SERVER_PLAN_TTL_MS, MAX_CACHED);
  private readonly questionnaires = new RecentReads<Questionnaire | undefined>(SERVER_PLAN_TTL_MS, MAX_CACHED);
  private readonly everyPlanOnServer = new ServerPlanList((since) =>
    // Sorted so that Medplum pages by cursor (its `_offset` stops at 10,000).
    this.fhir.searchAll<PlanDefinition>('PlanDefinition', {
      ...(since ? { _lastUpdated: `ge${since}` } : {}),
      _sort: '_lastUpdated',
      _count: 100,
    }),
  );
  private readonly lookups?: Counter<'found'>;

  constructor(
    private readonly catalog: ProtocolCatalog,
    private readonly fhir: FhirClient,
    @Optional() registry?: Registry,
  ) {
    this.lookups = registry
      ? new Counter({
          name: 'kc_protocol_lookups_total',
          help: "The protocols CarePlans were read with, by where each was found: catalog, fhir-server (an EHR's), latest-version (the version applied is gone: checked with the latest of its url) or not-found (nothing under the plan can be approved: an operator restores its PlanDefinition)",
          labelNames: ['found'],
          registers: [registry],
        })
      : undefined;
  }

  /** By id, canonical url or url|version; undefined when neither the catalog nor the FHIR server has it. */
  async find(idOrCanonical: string): Promise<ResolvedPlan | undefined> {
    const known = this.catalog.findPlanDefinition(idOrCanonical);
    if (known) return { plan: known, definitions: this.catalog };
    const plan = await this.fromServer(idOrCanonical);
    return plan ? this.withDefinitions(plan) : undefined;
  }

  /**
   * The protocol a CarePlan follows: the version it instantiates, else the latest one of its url (a version the EHR
   * replaced since: its patient checked, followed up and reminded as the clinic keeps the protocol now, rather than
   * not at all). Plans read from the server are reused for a short while, so checking many plans of one protocol
   * reads it once.
   */
  ofCarePlan(carePlan: CarePlan): Promise<ResolvedPlan | undefined> {
    const canonical = carePlan.instantiatesCanonical?.[0];
    return canonical ? this.ofCanonical(canonical) : Promise.resolve(undefined);
  }

  /** The same, by the canonical a CarePlan (or a worklist item) names. */
  async ofCanonical(canonical: string): Promise<ResolvedPlan | undefined> {
    const exact = await this.recentlyFound(canonical);
    if (exact || !canonical.includes('|'))
      return this.counted(exact, exact?.definitions === this.catalog ? 'catalog' : 'fhir-server');
    const latest = await this.recentlyFound(canonical.split('|')[0]);
    if (latest)
      this.logger.warn({
        msg: 'plan version not found: the latest of its url used',
        canonical,
        version: latest.plan.version,
      });
    return this.counted(latest, 'latest-version');
  }

  private counted(found: ResolvedPlan | undefined, where: string): ResolvedPlan | undefined {
    this.lookups?.inc({ found: found ? where : 'not-found' });
    return found;
  }

  /**
   * The Questionnaire a Task is done with: its plan's protocol (the version applied), the Task's action, that action's
   * ActivityDefinition and the Questionnaire it collects with, the catalog's or one on the FHIR server. A protocol
   * gone from the server: the ActivityDefinition the Task says it instantiates, so a patient's check after an
   * infusion is still recorded (what it asks about is the check's, not the protocol's).
   */
  async questionnaireOfTask(task: Task, carePlan: CarePlan | undefined): Promise<Questionnaire | undefined> {
    const protocol = carePlan && (await this.ofCarePlan(carePlan));
    const canonical = protocol
      ? questionnaireCanonicalOf(protocol, protocolActionOf(task))
      : collectWithOf(await this.activityOfTask(task));
    return canonical ? this.questionnaire(canonical) : undefined;
  }

  /** A Questionnaire by canonical: the catalog's, else the FHIR server's (an EHR's, kept as its protocols are). */
  questionnaire(canonical: string): Promise<Questionnaire | undefined> {
    const known = this.catalog.resolve<Questionnaire>(canonical, 'Questionnaire');
    if (known) return Promise.resolve(known);
    return this.questionnaires.get(canonical, () => this.byCanonical<Questionnaire>('Questionnaire', canonical));
  }

  /** The Questionnaires this process has read from the FHIR server (an EHR's checks): what the page shows answers of. */
  questionnairesSeenOnServer(): Questionnaire[] {
    const seen = new Map<string, Questionnaire>();
    for (const q of this.questionnaires.answers())
      if (q && !seen.has(`${q.url}|${q.version}`)) seen.set(`${q.url}|${q.version}`, q);
    return [...seen.values()];
  }

  /** The ActivityDefinition a Task was made from (its `instantiatesCanonical`), the catalog's or the FHIR server's. */
  private async activityOfTask(task: Task): Promise<ActivityDefinition | undefined> {
    const canonical = task.instantiatesCanonical;
    if (!canonical) return undefined;
    return (
      this.catalog.resolve<ActivityDefinition>(canonical, 'ActivityDefinition') ??
      (await this.byCanonical<ActivityDefinition>('ActivityDefinition', canonical))
    );
  }

  /**
   * The protocols this process has read from the FHIR server (an EHR's), latest first; what a poll watches for besides
   * the catalog's. The contraindication sweep reads every plan with open Tasks, so after one sweep these are the
   * protocols of every plan awaiting a decision.
   */
  seenOnServer(): ResolvedPlan[] {
    const seen = new Map<string, ResolvedPlan>();
    for (const found of this.plans.answers())
      if (found && found.definitions !== this.catalog) {
        const { url, version } = found.plan;
        if (!seen.has(`${url}|${version}`)) seen.set(`${url}|${version}`, found);
      }
    return [...seen.values()];
  }

  /**
   * Every PlanDefinition on the FHIR server, of any status (a plan applied before follows a retired one too), brought
   * up to date at most every 30 s by what changed (ServerPlanList): what a poll watches for besides the catalog's. Read
   * from the server, not from what this process has read, so every replica asks for the same, from the moment it
   * starts.
   */
  onServer(): Promise<PlanDefinition[]> {
    return this.everyPlanOnServer.get();
  }

  /**
   * Every protocol read from the FHIR server read again from now on (a PlanDefinition notified changed or deleted,
   * which a deletion names by id alone): the next reader sees what the server has, not what was kept for 30 s.
   */
  forgetServerPlans(): void {
    this.plans.clear();
    this.everyPlanOnServer.clear();
  }

  /** A definition just stored under this canonical: found again from now on, not "not found" for 30 s. */
  forget(canonical: string): void {
    this.plans.delete(canonical);
    this.plans.delete(canonical.split('|')[0]);
  }

  /**
   * Fetches what a plan's definitionCanonicals name, recursively, so the pure engine resolves them without I/O: one
   * batch per level of nesting (an ActivityDefinition or a nested PlanDefinition, whichever the server has), not one
   * search per definition.
   */
  async withDefinitions(plan: PlanDefinition): Promise<ResolvedPlan> {
    const fetched: CanonicalResource[] = [];
    const seen = new Set<string>();
    for (let level = [plan]; level.length;) {
      const wanted = [
        ...new Set(level.flatMap((p) => flattenActions(p.action ?? []).map((a) => a.definitionCanonical))),
      ].filter((c): c is string => Boolean(c) && !seen.has(c!) && !this.catalog.resolve(c!));
      wanted.forEach((c) => seen.add(c));
      const found = await searchEach(
        this.fhir,
        wanted.flatMap((canonical) => DEFINITION_TYPES.map((type) => definitionSearch(type, canonical))),
      );
      level = [];
      for (const canonical of wanted) {
        // The kind its url names first (…/PlanDefinition/…), else the other; missing: the engine answers 422 naming it.
        const kinds = canonical.includes('/PlanDefinition/') ? DEFINITION_TYPES : [...DEFINITION_TYPES].reverse();
        const definition = kinds
          .map((type) =>
            exactly<ActivityDefinition | PlanDefinition>(matchesOf(found[`${type} ${canonical}`]), canonical),
          )
          .find(Boolean);
        if (!definition) continue;
        fetched.push({ ...definition, version: canonical.split('|')[1] ?? definition.version });
        if (definition.resourceType === 'PlanDefinition') level.push(definition);
      }
    }
    const local = new ProtocolCatalog(fetched);
    return {
      plan,
      definitions: { resolve: (canonical) => this.catalog.resolve(canonical) ?? local.resolve(canonical) },
    };
  }

  /**
   * Exactly this url (and version, when given), the latest version first; undefined when the server has none. `via`:
   * the client to read with (one bounded by a CDS call's time budget).
   */
  async byCanonical<T extends CanonicalResource>(
    type: 'PlanDefinition' | 'ActivityDefinition' | 'Questionnaire',
    canonical: string,
    via: FhirClient = this.fhir,
  ): Promise<T | undefined> {
    const { params } = definitionSearch(type, canonical);
    return exactly(await via.searchAll<T>(type, params), canonical);
  }

  /** `find`, its answer kept for SERVER_PLAN_TTL_MS (the catalog's answers cost nothing to find again). */
  private recentlyFound(canonical: string): Promise<ResolvedPlan | undefined> {
    return this.plans.get(canonical, () => this.find(canonical));
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
}

const DEFINITION_TYPES = ['PlanDefinition', 'ActivityDefinition'] as const;

/** The search for a definition by its canonical (`url`, and `version` when it names one), named for a batch. */
function definitionSearch(type: string, canonical: string): NamedSearch {
  const [url, version] = canonical.split('|');
  return {
    name: `${type} ${canonical}`,
    resourceType: type,
    params: version ? { url, version } : { url },
    everyMatch: true,
  };
}

/**
 * Of what a search by url found, exactly that url (and version, when named), the latest version first: a server
 * answering `url` as Medplum's matcher does (a substring: the embedded store) also returns `<url>-v2` and the like.
 */
function exactly<T extends CanonicalResource>(found: T[], canonical: string): T | undefined {
  const [url, version] = canonical.split('|');
  return found
    .filter((r) => r.url === url && (!version || r.version === version))
    .sort((a, b) => (b.version ?? '').localeCompare(a.version ?? '', undefined, { numeric: true }))[0];
}
