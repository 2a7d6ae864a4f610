import { Inject, Injectable, Logger } from '@nestjs/common';
import type {
  BundleEntry,
  CarePlan,
  CommunicationRequest,
  DetectedIssue,
  Procedure,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';
import { conflict, unprocessable } from '@kc/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, includedOf, matchesOf, updateEntry } from '@kc/fhir';
import {
  carePlanHoldsCare,
  proposedAgainEntries,
  replanWithoutInfusion,
  requestWrites,
  type Replan,
} from '@kc/followups';
import { openOrdersOfSessions, sessionOrderChainsOf } from '@kc/nest-core';
import {
  infusionInErrorOf,
  isInfusionInError,
  plansImplicatedBy,
  SERVICE_CODE_SYSTEM,
  tasksOfInfusion,
  withListedActivities,
} from '@kc/protocols';
import { isApproved, isAuthorisable, type AuthorisableRequest } from '@kc/task-states';
import { isUnresolved } from './contraindication-guard';
import { ContraindicationOverrideService } from './contraindication-override.service';
import { DecisionWriter, type Consequence } from './task-review.service';

/** How the issue was resolved (DetectedIssue.mitigation.action), fhir-profiles' CodeSystem. */
const REPLANNED = {
  system: SERVICE_CODE_SYSTEM,
  code: 'replanned-without-infusion',
  display: 'Planned again without the infusion recorded in error',
};

/**
 * `$replan` of an `infusion-recorded-in-error` issue: the clinician plans again without that infusion
 * (replanWithoutInfusion): what it planned withdrawn, what it closed entered in error and proposed again, awaiting
 * approval. One transaction holds all of it, the issue resolved (its mitigation says what was done, by whom, why), the
 * plan listing the new Tasks (If-Match) and the clinician's Provenance naming every write: a crash leaves all or
 * nothing, and a write someone changed meanwhile refuses it (412: reload). Then, as an override does, the orders the
 * issue held are released and the clinic told it is dealt with. Before session 41 the clinician could only override
 * it after putting the plan right by hand, and a session the infusion closed could not be proposed again.
 */
@Injectable()
export class InfusionReplanService {
  private readonly logger = new Logger(InfusionReplanService.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly writer: DecisionWriter,
    private readonly overrides: ContraindicationOverrideService,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  async replan(input: {
    issue: DetectedIssue;
    seenVersion: string;
    caller: Caller;
    reason: string;
  }): Promise<DetectedIssue> {
    const { issue } = input;
    if (!isInfusionInError(issue))
      throw unprocessable(
        'Only an infusion recorded in error is planned again without it; override this issue instead',
        [`DetectedIssue/${issue.id}`],
      );
    const procedureId = infusionInErrorOf(issue);
    const carePlanId = plansImplicatedBy(issue)[0]?.slice('CarePlan/'.length);
    if (!procedureId || !carePlanId)
      throw unprocessable('This issue names no infusion or no care plan to plan again', [`DetectedIssue/${issue.id}`]);
    // Resolved since the version the clinician saw: the writer tells this same decision retried from a conflict.
    if (!isUnresolved(issue) && issue.meta?.versionId === input.seenVersion)
      throw conflict(`This issue is already ${issue.mitigation?.length ? 'resolved' : issue.status}`, 409, [
        `DetectedIssue/${issue.id}`,
      ]);
    const now = new Date();
    const { replan, carePlan } = await this.judge(procedureId, carePlanId, now);
    // A plan over proposes nothing: what it held is withdrawn with it (the stopped-plan sweep), and the issue overridden.
    const holds = carePlanHoldsCare(carePlan);
    if (!holds.ok && holds.closed)
      throw conflict(`Nothing is planned again: ${holds.reason}. Override this issue instead`, 409, [
        `CarePlan/${carePlanId}`,
      ]);
    const action = actionText(replan, input.reason);
    const written = await this.writer.write<DetectedIssue>({
      current: issue,
      seenVersion: input.seenVersion,
      caller: input.caller,
      decision: 'plan again without the infusion recorded in error',
      reason: input.reason,
      asked: (now) => !!now.mitigation?.some((m) => m.action?.coding?.some((c) => c.code === REPLANNED.code)),
      change: (current) => ({
        ...current,
        status: 'final',
        mitigation: [
          ...(current.mitigation ?? []),
          {
            action: { coding: [REPLANNED], text: action },
            date: now.toISOString(),
            author: input.caller.fhirUser ? { reference: input.caller.fhirUser } : undefined,
          },
        ],
      }),
      consequences: [() => consequencesOf(replan, carePlan)],
    });
    this.logger.log({
      msg: 'plan put right without an infusion recorded in error',
      carePlan: carePlanId,
      withdrawn: replan.withdrawn.length,
      proposedAgain: replan.proposedAgain.length,
    });
    // Nothing under the plan is to be proposed from the protocol again: what the infusion closed was, above.
    await this.overrides.afterResolution(written, { ...input, regenerate: false });
    return written;
  }

  /**
   * The plan as it is (two rounds: its Tasks with their proposals, the plan, the infusion and the plan's reminders;
   * then the open orders of what the infusion planned and the orders of what it closed, with the pump's records),
   * judged.
   */
  private async judge(
    procedureId: string,
    carePlanId: string,
    now: Date,
  ): Promise<{ replan: Replan; carePlan: CarePlan }> {
    const plan = `CarePlan/${carePlanId}`;
    const [tasksAndProposals, carePlan, infusion, reminders] = await Promise.all([
      this.tasksWithProposals(plan),
      this.fhir.read<CarePlan>('CarePlan', carePlanId),
      this.fhir.readEvenIfDeleted<Procedure>('Procedure', procedureId),
      this.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
        'based-on': plan,
        status: 'active',
        _count: 200,
      }),
    ]);
    const { tasks, proposals } = tasksAndProposals;
    const { planned, answered } = tasksOfInfusion(procedureId, tasks);
    const [openOrders, closed] = await Promise.all([
      openOrdersOfSessions(
        this.fhir,
        planned.filter((t) => isApproved(t) || t.status === 'on-hold'),
      ),
      sessionOrderChainsOf(this.fhir, answered),
    ]);
    const replan = replanWithoutInfusion({
      procedureId,
      performed: infusion?.resource.performedPeriod,
      tasks,
      proposals,
      openOrders,
      closedOrders: closed,
      reminders,
      now,
      zone: this.config.clinicTimeZone,
    });
    return { replan, carePlan };
  }

  private async tasksWithProposals(
    plan: string,
  ): Promise<{ tasks: Task[]; proposals: Map<string, AuthorisableRequest> }> {
    const tasks: Task[] = [];
    const proposals = new Map<string, AuthorisableRequest>();
    for await (const page of this.fhir.searchPages<Task>('Task', {
      'based-on': plan,
      _include: 'Task:focus',
      _count: 200,
    })) {
      tasks.push(...matchesOf<Task>(page));
      for (const r of includedOf<Resource>(page)) if (isAuthorisable(r)) proposals.set(`${r.resourceType}/${r.id}`, r);
    }
    return { tasks, proposals };
  }
}

/**
 * Every write of the replan, beside the issue's: each update with If-Match on what was read, the new proposals and
 * Tasks at their urn:uuid, and the plan listing the new Tasks (If-Match).
 */
function consequencesOf(replan: Replan, carePlan: CarePlan): Consequence[] {
  const updates: BundleEntry[] = [
    ...replan.withdrawn.flatMap((w) =>
      [{ resource: w.withdrawn, read: w.task }, ...requestWrites(w)].map(({ resource, read }) =>
        updateEntry(resource, read.meta?.versionId),
      ),
    ),
    ...replan.inError.flatMap((e) => [
      updateEntry(e.task.written, e.task.read.meta?.versionId),
      ...e.orders.map((o) => updateEntry(o.written, o.read.meta?.versionId)),
    ]),
  ];
  const creates: Consequence[] = proposedAgainEntries(replan.proposedAgain);
  const listed = withListedActivities(
    carePlan,
    replan.proposedAgain.map((p) => p.fullUrl),
  );
  return [...onceEach(updates), ...creates, ...(listed ? [updateEntry(listed, carePlan.meta?.versionId)] : [])];
}

/**
 * Each resource updated once: an order two sessions were approved on (as a build before session 42 allowed) is
 * withdrawn or cancelled with the first (a second If-Match update of it refused the whole decision, 412).
 */
function onceEach(updates: BundleEntry[]): BundleEntry[] {
  const urls = updates.map((e) => e.request?.url);
  return updates.filter((e, i) => urls.indexOf(e.request?.url) === i);
}

/** What the issue's mitigation says was done, and why. */
function actionText(replan: Replan, reason: string): string {
  const parts = [
    `${replan.withdrawn.length} Task${replan.withdrawn.length === 1 ? '' : 's'} it planned withdrawn`,
    `${replan.proposedAgain.length} it closed proposed again for approval`,
    ...(replan.begun.length ? [`${replan.begun.length} begun at the pump left to their infusion`] : []),
    ...(replan.givenAtThePump.length ? [`${replan.givenAtThePump.length} given at the pump kept done`] : []),
  ];
  return `Planned again without the infusion: ${parts.join('; ')}. ${reason}`;
}
