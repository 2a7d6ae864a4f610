import { Inject, Injectable, Logger } from '@nestjs/common';
import type { CarePlan, Observation, PlanDefinition, Procedure, Task } from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf, searchEach, searchWhole } from '@kc/fhir';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import {
  boosterProposal,
  carePlanTakesFollowUps,
  infusionDefinitionFor,
  isInfusion,
  outcomeTimingRule,
  reproposedBooster,
  scoreCodes,
  type OutcomeTimingRule,
} from '@kc/followups';
import { PlanDefinitions } from '@kc/nest-core';
import { flattenActions, protocolActionOf, protocolWindowOf, type DefinitionResolver } from '@kc/protocols';

export type BoosterOutcome =
  { status: 'ignored'; reason: string } | { status: 'evaluated'; moved: string[]; unchanged: string[] };

interface Candidate {
  task: Task & { id: string };
  carePlan: CarePlan;
  plan: PlanDefinition;
  definitions: DefinitionResolver;
  rule: OutcomeTimingRule;
}

/**
 * A score was recorded (pain NRS, PEG, PHQ-9): re-propose the patient's maintenance boosters still awaiting
 * approval, earlier or later within the protocol's window, with the Observations behind it (libs/followups'
 * booster-timing decides). Approved boosters are the clinician's decision and are left alone. Requests: the
 * Observation; the patient's draft Tasks with their CarePlans (every page); one batch per CarePlan (scores,
 * infusions); one If-Match update per booster that changes (a concurrent decision makes it 412: the job retries on
 * fresh data).
 */
@Injectable()
export class BoosterOutcomes {
  private readonly logger = new Logger(BoosterOutcomes.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly protocols: PlanDefinitions,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  async handle(observationId: string): Promise<BoosterOutcome> {
    const observation = await this.fhir.readIfExists<Observation>('Observation', observationId);
    const patient = observation?.subject?.reference;
    if (!observation || !patient?.startsWith('Patient/')) return { status: 'ignored', reason: 'no patient score' };
    const candidates = (await this.candidates(patient)).filter((c) => scores(c.rule, observation));
    if (!candidates.length) return { status: 'ignored', reason: 'no booster awaiting approval that this score judges' };
    const moved: string[] = [];
    const unchanged: string[] = [];
    for (const candidate of candidates) {
      const next = await this.reproposal(candidate, patient);
      if (!next) {
        unchanged.push(candidate.task.id);
        continue;
      }
      await this.fhir.update(next, { ifMatch: candidate.task.meta!.versionId! });
      moved.push(candidate.task.id);
    }
    if (moved.length) this.logger.log({ msg: 'boosters re-proposed from scores', tasks: moved });
    return { status: 'evaluated', moved, unchanged };
  }

  /** The patient's Tasks awaiting approval whose protocol action has outcome-driven timing, with their CarePlans. */
  private async candidates(patient: string): Promise<Candidate[]> {
    // Read whole: a booster on a later page is re-proposed like the first 200 (a patient with years of follow-ups
    // awaiting review).
    const bundle = await searchWhole(this.fhir, 'Task', {
      patient,
      status: 'draft',
      _include: 'Task:based-on',
      _count: 200,
    });
    const carePlans = new Map(
      includedOf(bundle)
        .filter((r): r is CarePlan => r.resourceType === 'CarePlan')
        .map((c) => [`CarePlan/${c.id}`, c]),
    );
    const candidates = matchesOf<Task>(bundle).map(async (task): Promise<Candidate[]> => {
      const carePlan = task.basedOn?.map((b) => carePlans.get(b.reference ?? '')).find(Boolean);
      if (!carePlan || !task.id || !carePlanTakesFollowUps(carePlan).ok) return [];
      // The protocol the plan was applied with: the catalog's, or an EHR's on the FHIR server (kept 30 s).
      const protocol = await this.protocols.ofCarePlan(carePlan);
      if (!protocol) return [];
      const { plan, definitions } = protocol;
      const rule = outcomeTimingRule(flattenActions(plan.action ?? []).find((a) => a.id === protocolActionOf(task)));
      return rule ? [{ task: { ...task, id: task.id }, carePlan, plan, definitions, rule }] : [];
    });
    return (await Promise.all(candidates)).flat();
  }

  private async reproposal(
    { task, carePlan, plan, definitions, rule }: Candidate,
    patient: string,
  ): Promise<Task | undefined> {
    const last = task.reasonReference?.reference;
    if (!last?.startsWith('Procedure/')) return undefined;
    // One batch; every score and every infusion counts (the baseline is the first, the latest decides), so a search
    // with more than a page of matches is read whole (a round trip more, only then).
    const found = await searchEach(this.fhir, [
      {
        name: 'scores',
        resourceType: 'Observation',
        params: { patient, code: scoreCodes(rule).join(','), _count: '1000' },
        everyMatch: true,
      },
      {
        name: 'infusions',
        resourceType: 'Procedure',
        params: { 'based-on': `CarePlan/${carePlan.id}`, status: 'completed', _count: '1000' },
        everyMatch: true,
      },
    ]);
    const observations = matchesOf<Observation>(found.scores);
    // Only the protocol's infusions count (a consult recorded on the plan is not a first infusion).
    const definition = infusionDefinitionFor(plan, definitions);
    const infusions = matchesOf<Procedure>(found.infusions).filter((p) => isInfusion(p, definition));
    const lastInfusion = infusions.find((p) => `Procedure/${p.id}` === last);
    const starts = infusions
      .map((p) => p.performedPeriod?.start ?? p.performedDateTime)
      .filter((s): s is string => !!s);
    const lastEnd = lastInfusion?.performedPeriod?.end ?? lastInfusion?.performedDateTime;
    if (!starts.length || !lastEnd) return undefined;
    const proposal = boosterProposal({
      rule,
      observations,
      firstInfusionStart: starts.sort((a, b) => Date.parse(a) - Date.parse(b))[0],
      lastInfusionEnd: lastEnd,
      protocolWindow: protocolWindowOf(task),
      zone: this.config.clinicTimeZone,
    });
    return reproposedBooster(task, proposal);
  }
}

function scores(rule: OutcomeTimingRule, observation: Observation): boolean {
  const codes = new Set(scoreCodes(rule));
  return Boolean(observation.code?.coding?.some((c) => codes.has(`${c.system}|${c.code}`)));
}
