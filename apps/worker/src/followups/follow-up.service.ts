import { Injectable, Logger } from '@nestjs/common';
import type {
  BundleEntry,
  CarePlan,
  DetectedIssue,
  Patient,
  PlanDefinition,
  Procedure,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { FhirClient, FhirNotFoundError, FhirVersionConflictError, searchEach } from '@kc/fhir';
import {
  applyInfusionUpdate,
  carePlanTakesFollowUps,
  completedInfusionCount,
  infusionDefinitionFor,
  infusionFollowUpActions,
  infusionTaskUpdates,
  isInfusion,
  planFollowUps,
  toInfusionCompleted,
  type FollowUp,
  type InfusionCompleted,
  type InfusionDefinition,
} from '@kc/followups';
import { keySearch, patientDataQueries, ProtocolCatalog, TASK_KEY_SYSTEM, APPLY_KEY_SYSTEM } from '@kc/protocols';
import { FollowUpMetrics } from './follow-up.metrics';

export type FollowUpOutcome =
  | {
      status: 'created';
      tasks: string[];
      alreadyExisted: number;
      superseded: number;
      fulfilled: number;
      contraindications: number;
    }
  | { status: 'ignored'; reason: string };

/** Progress reports: the job's progress in the dashboard. */
export type ProgressReporter = (percent: number, step: string) => Promise<void>;

/**
 * The I/O around the pure follow-up rules: read the infusion and its CarePlan from the FHIR server, work out
 * the follow-ups, write them in one transaction of conditional creates (so a retry or a duplicate event
 * finds the Tasks already there and writes nothing new).
 */
@Injectable()
export class FollowUpService {
  private readonly logger = new Logger(FollowUpService.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly catalog: ProtocolCatalog,
    private readonly metrics: FollowUpMetrics,
  ) {}

  async handle(procedureId: string, progress: ProgressReporter = async () => {}): Promise<FollowUpOutcome> {
    let procedure: Procedure;
    try {
      procedure = await this.fhir.read<Procedure>('Procedure', procedureId);
    } catch (err) {
      if (err instanceof FhirNotFoundError) return this.ignore(procedureId, 'Procedure not found');
      throw err;
    }
    const check = toInfusionCompleted(procedure);
    if (!check.ok) return this.ignore(procedureId, check.reason);
    const { event } = check;
    await progress(20, 'read infusion');

    const carePlan = await this.fhir.readIfExists<CarePlan>('CarePlan', event.carePlanId);
    if (!carePlan) return this.ignore(procedureId, 'CarePlan not found');
    const open = carePlanTakesFollowUps(carePlan);
    if (!open.ok) return this.ignore(procedureId, open.reason);
    const plan = carePlan.instantiatesCanonical?.map((c) => this.catalog.findPlanDefinition(c)).find(Boolean);
    if (!plan) return this.ignore(procedureId, 'CarePlan does not instantiate a known protocol');
    const infusion = infusionDefinitionFor(plan, this.catalog);
    if (!isInfusion(procedure, infusion)) return this.ignore(procedureId, "not an infusion of the CarePlan's protocol");

    const [history, patientData, patient, overridden] = await Promise.all([
      this.fhir.searchAll<Procedure>('Procedure', {
        'based-on': `CarePlan/${carePlan.id}`,
        status: 'completed',
        _count: 100,
      }),
      // Every input: the contraindication checks above the follow-up rules are evaluated again on today's data.
      searchEach(this.fhir, patientDataQueries(plan, event.patientId)),
      this.fhir.readIfExists<Patient>('Patient', event.patientId),
      this.overriddenOn(carePlan.id!),
    ]);
    const count = completedInfusionCount(event, history, infusion);
    await progress(50, 'read care plan and history');

    const planned = planFollowUps({
      event,
      carePlan,
      plan,
      catalog: this.catalog,
      completedInfusionCount: count,
      patientData,
      patient,
      overridden,
      now: new Date(),
    });
    const issueEntries: BundleEntry[] = planned.detectedIssues.map((i) => ({
      resource: i.resource,
      request: { method: 'POST', url: 'DetectedIssue', ifNoneExist: i.ifNoneExist },
    }));
    const response = await this.fhir.transaction([...planned.followUps.flatMap(toEntries), ...issueEntries]);
    await progress(90, 'wrote follow-up tasks');

    const taskResponses = (response.entry ?? []).filter(
      (e) => /^Task\//.test(e.response?.location ?? '') || e.resource?.resourceType === 'Task',
    );
    const alreadyExisted = taskResponses.filter((e) => e.response?.status?.startsWith('200')).length;
    const tasks = taskResponses.map((e) =>
      e.resource?.id ? `Task/${e.resource.id}` : (e.response?.location ?? '').split('/_history')[0],
    );
    await this.listOnCarePlan(carePlan.id!, tasks);
    const { done, superseded } = await this.updateInfusionTasks(event, procedure, plan, infusion, history);
    this.logger.log({
      msg: 'follow-ups written',
      procedure: procedureId,
      carePlan: carePlan.id,
      tasks: tasks.length,
      alreadyExisted,
      done,
      superseded,
      contraindications: planned.detectedIssues.length,
    });
    return {
      status: 'created',
      tasks,
      alreadyExisted,
      superseded,
      fulfilled: done,
      contraindications: planned.detectedIssues.length,
    };
  }

  /**
   * The CarePlan lists every Task generated for it, each once (an EHR reading CarePlan.activity sees the whole
   * plan). If-Match, re-read once on a concurrent change; still conflicting, the job retries (creates are keyed).
   */
  private async listOnCarePlan(carePlanId: string, tasks: string[], attempt = 0): Promise<void> {
    const carePlan = await this.fhir.read<CarePlan>('CarePlan', carePlanId);
    const listed = new Set((carePlan.activity ?? []).map((a) => a.reference?.reference));
    const missing = tasks.filter((t) => t && !listed.has(t));
    if (!missing.length) return;
    const activity = [...(carePlan.activity ?? []), ...missing.map((reference) => ({ reference: { reference } }))];
    try {
      await this.fhir.update({ ...carePlan, activity }, { ifMatch: carePlan.meta?.versionId });
    } catch (err) {
      if (err instanceof FhirVersionConflictError && attempt === 0) return this.listOnCarePlan(carePlanId, tasks, 1);
      throw err;
    }
  }

  private async overriddenOn(carePlanId: string): Promise<Set<string>> {
    const issues = await this.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${carePlanId}` });
    return new Set(
      issues.filter((i) => i.mitigation?.length).flatMap((i) => (i.code?.coding ?? []).map((c) => c.code!)),
    );
  }

  /**
   * The infusion fulfils the Task that planned it (done) and supersedes older infusion Tasks, through the Task
   * state machine, each with If-Match: a clinician's concurrent decision wins, and the next event tries again.
   */
  private async updateInfusionTasks(
    event: InfusionCompleted,
    procedure: Procedure,
    plan: PlanDefinition,
    definition: InfusionDefinition,
    history: Procedure[],
  ) {
    const infusionActions = infusionFollowUpActions(plan, this.catalog, definition);
    if (!infusionActions.size) return { done: 0, superseded: 0 };
    const openTasks = await this.fhir.searchAll<Task>('Task', {
      'based-on': `CarePlan/${event.carePlanId}`,
      status: 'draft,ready',
      _count: 100,
    });
    const counts = { done: 0, superseded: 0 };
    const now = new Date();
    for (const update of infusionTaskUpdates({ event, procedure, openTasks, history, definition, infusionActions })) {
      try {
        await this.fhir.update(applyInfusionUpdate(update, now), { ifMatch: update.task.meta?.versionId });
        counts[update.outcome === 'done' ? 'done' : 'superseded']++;
      } catch (err) {
        if (!(err instanceof FhirVersionConflictError)) throw err;
      }
    }
    return counts;
  }

  private ignore(procedureId: string, reason: string): FollowUpOutcome {
    this.metrics.ignored.inc();
    this.logger.log({ msg: 'infusion event ignored', procedure: procedureId, reason });
    return { status: 'ignored', reason };
  }
}

function toEntries(followUp: FollowUp): BundleEntry[] {
  const entries: BundleEntry[] = [];
  if (followUp.request) {
    const request = {
      ...followUp.request,
      identifier: [{ system: APPLY_KEY_SYSTEM, value: followUp.key }],
    } as Resource;
    entries.push({
      fullUrl: followUp.requestFullUrl,
      resource: request,
      request: { method: 'POST', url: request.resourceType, ifNoneExist: keySearch(APPLY_KEY_SYSTEM, followUp.key) },
    });
  }
  entries.push({
    resource: followUp.task,
    request: { method: 'POST', url: 'Task', ifNoneExist: keySearch(TASK_KEY_SYSTEM, followUp.key) },
  });
  return entries;
}
