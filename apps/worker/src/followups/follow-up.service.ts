import { Injectable, Logger } from '@nestjs/common';
import type {
  BundleEntry,
  CarePlan,
  CommunicationRequest,
  DetectedIssue,
  MedicationRequest,
  Patient,
  PlanDefinition,
  Procedure,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import {
  batchResult,
  FhirClient,
  getEntry,
  includedOf,
  matchesOf,
  searchEntries,
  searchResults,
  updateEntry,
  withRemainingPages,
  type NamedSearch,
} from '@kc/fhir';
import {
  applyInfusionUpdate,
  carePlanTakesFollowUps,
  completedInfusionCount,
  infusionDefinitionFor,
  infusionFollowUpActions,
  infusionPhase,
  infusionTaskUpdates,
  isInfusion,
  planFollowUps,
  remindersEndedBy,
  toInfusionCompleted,
  type FollowUp,
  type InfusionCompleted,
  type InfusionDefinition,
} from '@kc/followups';
import {
  APPLY_KEY_SYSTEM,
  flattenActions,
  INFUSION_COMPLETED_TRIGGER,
  patientDataQueries,
  ProtocolCatalog,
  TASK_KEY_SYSTEM,
  taskKey,
  triggeredActions,
  uuidFromKey,
  overriddenContraindications,
  withListedActivities,
} from '@kc/protocols';
import { orderAnsweredBy, orderTaskIdOf } from '@kc/task-states';
import { FollowUpMetrics } from './follow-up.metrics';

export type FollowUpOutcome =
  | {
      status: 'created';
      carePlanId: string;
      tasks: string[];
      alreadyExisted: number;
      superseded: number;
      fulfilled: number;
      contraindications: number;
      remindersRevoked: number;
      ordersClosed: number;
    }
  | { status: 'ignored'; reason: string };

/** What a followed-up infusion event comes with, once read. */
interface EventContext {
  procedure: Procedure;
  event: InfusionCompleted;
  carePlan: CarePlan;
  plan: PlanDefinition;
  infusion: InfusionDefinition;
}

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

  /**
   * At most 3 FHIR round trips on the way to the Tasks (test/followups-round-trips.e2e-spec.ts): (1) the Procedure
   * with its CarePlan (`_include`), (2) one batch of reads (history, patient data, Patient, DetectedIssues, the
   * CarePlan's open Tasks and active reminders, the patient's orders still to be given, the Tasks already written for
   * this infusion), (3) one transaction holding the creates, the If-Match updates of the Tasks this infusion fulfils or
   * supersedes (and of their pending reminders, revoked, and their orders, closed) and the CarePlan's activity list. More only when a search has more than one page (a CarePlan with over 1,000 infusions).
   */
  async handle(procedureId: string, progress: ProgressReporter = async () => {}): Promise<FollowUpOutcome> {
    const found = await this.readEvent(procedureId);
    if ('ignored' in found) return this.ignore(procedureId, found.ignored);
    const { procedure, event, carePlan, plan, infusion } = found;
    await progress(20, 'read infusion');

    const around = await this.readAround(event, carePlan, plan);
    await progress(50, 'read care plan and history');

    const now = new Date();
    const infusionActions = infusionFollowUpActions(plan, this.catalog, infusion);
    // What this infusion fulfils (its session or booster) gives its phase, and so its check's. answeredTasks judges
    // again with the new Tasks included; this infusion fulfils none of those (they follow it).
    const fulfilled = infusionTaskUpdates({
      event,
      procedure,
      openTasks: around.openTasks,
      history: around.history,
      definition: infusion,
      infusionActions,
    });
    const planned = planFollowUps({
      event,
      carePlan,
      plan,
      catalog: this.catalog,
      completedInfusionCount: completedInfusionCount(event, around.history, infusion),
      patientData: around.patientData,
      patient: around.patient,
      overridden: around.overridden,
      infusionPhase: infusionPhase(fulfilled, event.procedureId, plan),
      now,
    });
    const writtenByKey = new Map(around.written.map((t) => [keyOf(t), t]));
    const alreadyWritten = planned.followUps
      .filter((f) => writtenByKey.has(f.key))
      .map((f) => `Task/${writtenByKey.get(f.key)!.id}`);
    const newTasks = planned.followUps
      .filter((f) => !writtenByKey.has(f.key))
      .map((f) => ({ ...f, fullUrl: `urn:uuid:${uuidFromKey(`task|${f.key}`)}` }));
    const answered = this.answeredTasks({ event, procedure, infusion, infusionActions, around, newTasks, now });
    const carePlanUpdate = activityEntry(carePlan, [...alreadyWritten, ...newTasks.map((f) => f.fullUrl)]);
    // With the CarePlan's If-Match update in the transaction, two writers for the same plan cannot both land (one gets
    // 412, its job retries and re-reads), so creates need no If-None-Exist: no conditional entry, so Medplum runs the
    // transaction without SERIALIZABLE isolation or its 8-entry limit, and events of different patients never
    // conflict. Without it (a contraindication found, no new Task) the DetectedIssue stays a conditional create.
    const locked = carePlanUpdate.length > 0;
    const entries = [
      ...newTasks.flatMap((f) => toEntries(f, f.fullUrl, answered.created.get(f.fullUrl)!)),
      ...newIssues(planned.detectedIssues, around.issues).map((i): BundleEntry => ({
        resource: i.resource,
        request: { method: 'POST', url: 'DetectedIssue', ifNoneExist: locked ? undefined : i.ifNoneExist },
      })),
      ...answered.updateEntries,
      ...carePlanUpdate,
    ];
    const response = entries.length ? await this.fhir.transaction(entries) : { entry: [] as BundleEntry[] };
    await progress(90, 'wrote follow-up tasks');

    const taskResponses = (response.entry ?? []).filter(
      (e, i) =>
        entries[i]?.request?.method === 'POST' &&
        (/^Task\//.test(e.response?.location ?? '') || e.resource?.resourceType === 'Task'),
    );
    const alreadyExisted = alreadyWritten.length;
    const tasks = [
      ...alreadyWritten,
      ...taskResponses.map((e) =>
        e.resource?.id ? `Task/${e.resource.id}` : (e.response?.location ?? '').split('/_history')[0],
      ),
    ];
    const { done, superseded, remindersRevoked, ordersClosed } = answered.counts;
    const contraindications = planned.detectedIssues.length;
    this.logger.log({
      msg: 'follow-ups written',
      procedure: procedureId,
      carePlan: carePlan.id,
      tasks: tasks.length,
      alreadyExisted,
      done,
      superseded,
      remindersRevoked,
      ordersClosed,
      contraindications,
    });
    return {
      status: 'created',
      carePlanId: carePlan.id!,
      tasks,
      alreadyExisted,
      superseded,
      fulfilled: done,
      contraindications,
      remindersRevoked,
      ordersClosed,
    };
  }

  /** Round trip 1: the Procedure with its CarePlan, and whether this service follows it up at all. */
  private async readEvent(procedureId: string): Promise<{ ignored: string } | EventContext> {
    const first = await this.fhir.search<Procedure | CarePlan>('Procedure', {
      _id: procedureId,
      _include: 'Procedure:based-on',
    });
    const procedure = matchesOf<Procedure>(first).find((r) => r.resourceType === 'Procedure' && r.id === procedureId);
    if (!procedure) return { ignored: 'Procedure not found' };
    const check = toInfusionCompleted(procedure);
    if (!check.ok) return { ignored: check.reason };
    const { event } = check;
    const carePlan = includedOf<CarePlan>(first).find(
      (r) => r.resourceType === 'CarePlan' && r.id === event.carePlanId,
    );
    if (!carePlan) return { ignored: 'CarePlan not found' };
    const open = carePlanTakesFollowUps(carePlan);
    if (!open.ok) return { ignored: open.reason };
    const plan = this.catalog.planOf(carePlan);
    if (!plan) return { ignored: 'CarePlan does not instantiate a known protocol' };
    const infusion = infusionDefinitionFor(plan, this.catalog);
    if (!isInfusion(procedure, infusion)) return { ignored: "not an infusion of the CarePlan's protocol" };
    return { procedure, event, carePlan, plan, infusion };
  }

  /**
   * Fulfilled / superseded: judged on the open Tasks and the ones about to be created (an infusion already on
   * record after this one answers them at once, whatever order the events arrive in). New Tasks are written in
   * their answered state; existing ones get If-Match updates, and so do their reminders still pending (revoked) and
   * their orders (completed when given, cancelled when a later infusion made them moot).
   */
  private answeredTasks(input: {
    event: InfusionCompleted;
    procedure: Procedure;
    infusion: InfusionDefinition;
    infusionActions: Set<string>;
    around: {
      openTasks: Task[];
      history: Procedure[];
      reminders: CommunicationRequest[];
      orders: MedicationRequest[];
    };
    newTasks: (FollowUp & { fullUrl: string })[];
    now: Date;
  }) {
    const { newTasks, now, infusionActions } = input;
    const updates = infusionActions.size
      ? infusionTaskUpdates({
          event: input.event,
          procedure: input.procedure,
          openTasks: [...input.around.openTasks, ...newTasks.map((f) => f.task)],
          history: input.around.history,
          definition: input.infusion,
          infusionActions,
        })
      : [];
    const pending = new Map(newTasks.map((f) => [f.task, f]));
    const created = new Map(newTasks.map((f) => [f.fullUrl, f.task]));
    const updateEntries: BundleEntry[] = [];
    const counts = { done: 0, superseded: 0, remindersRevoked: 0, ordersClosed: 0 };
    // Each order by the Task whose approval wrote it.
    const orders = new Map(input.around.orders.map((o) => [orderTaskIdOf(o), o]));
    for (const update of updates) {
      const next = applyInfusionUpdate(update, now);
      const newOne = pending.get(update.task);
      if (newOne) created.set(newOne.fullUrl, next);
      else updateEntries.push(updateEntry(next, update.task.meta!.versionId));
      counts[update.outcome === 'done' ? 'done' : 'superseded']++;
      // An approved Task's order: given, or no longer to be given.
      const order = update.task.id ? orders.get(update.task.id) : undefined;
      if (order) {
        updateEntries.push(updateEntry(orderAnsweredBy(order, update.outcome, update.by), order.meta?.versionId));
        counts.ordersClosed++;
      }
    }
    // New Tasks have no reminders yet (a Task gets them when approved).
    const revoked = remindersEndedBy(
      updates.filter((u) => !pending.has(u.task)),
      input.around.reminders,
    );
    updateEntries.push(...revoked.map((r) => updateEntry(r, r.meta!.versionId)));
    counts.remindersRevoked = revoked.length;
    return { created, updateEntries, counts };
  }

  /** Everything the rules read besides the Procedure and the CarePlan, in one batch. */
  private async readAround(event: InfusionCompleted, carePlan: CarePlan, plan: PlanDefinition) {
    const carePlanRef = `CarePlan/${carePlan.id}`;
    const dataQueries = patientDataQueries(plan, event.patientId);
    // Every Task this infusion could have produced already (a retry, a duplicate event): keys are deterministic.
    const candidateKeys = triggeredActions(plan, INFUSION_COMPLETED_TRIGGER)
      .flatMap((a) => flattenActions([a]))
      .filter((a) => a.id)
      .map((a) => `${TASK_KEY_SYSTEM}|${taskKey(carePlan.id!, event.procedureId, a.id!)}`);
    const searches: NamedSearch[] = [
      {
        name: 'history',
        resourceType: 'Procedure',
        params: { 'based-on': carePlanRef, status: 'completed', _count: PAGE },
      },
      { name: 'issues', resourceType: 'DetectedIssue', params: { implicated: carePlanRef, _count: PAGE } },
      {
        name: 'openTasks',
        resourceType: 'Task',
        // on-hold: approved, its order held for a contraindication; an infusion given anyway still fulfils it.
        params: { 'based-on': carePlanRef, status: 'draft,ready,on-hold', _count: PAGE },
      },
      {
        name: 'reminders',
        resourceType: 'CommunicationRequest',
        params: { 'based-on': carePlanRef, status: 'active', _count: PAGE },
      },
      {
        // The patient's orders still to be given: those of the Tasks this infusion answers are closed with them.
        name: 'orders',
        resourceType: 'MedicationRequest',
        params: { subject: `Patient/${event.patientId}`, intent: 'order', status: 'active,on-hold', _count: PAGE },
      },
      {
        name: 'written',
        resourceType: 'Task',
        params: { identifier: candidateKeys.join(',') || 'none|none', _count: PAGE },
      },
    ].map((s) => ({ ...s, everyMatch: true }));
    const response = await this.fhir.batch([
      ...searchEntries(searches),
      ...searchEntries(dataQueries),
      getEntry(`Patient/${encodeURIComponent(event.patientId)}`),
    ]);
    // A search with more than a page of matches (rare: a CarePlan with over 1,000 infusions) is read whole.
    const [found, patientData] = await Promise.all([
      withRemainingPages(this.fhir, searchResults(response, searches), searches),
      withRemainingPages(this.fhir, searchResults(response, dataQueries, searches.length), dataQueries),
    ]);
    const patient = batchResult<Patient>(response.entry?.[searches.length + dataQueries.length], 'Patient');
    const history = matchesOf<Procedure>(found.history);
    const issues = matchesOf<DetectedIssue>(found.issues);
    const openTasks = matchesOf<Task>(found.openTasks);
    const written = matchesOf<Task>(found.written);
    const reminders = matchesOf<CommunicationRequest>(found.reminders);
    const orders = matchesOf<MedicationRequest>(found.orders);
    const overridden = overriddenContraindications(issues);
    return { history, patientData, patient, overridden, openTasks, written, issues, reminders, orders };
  }

  private ignore(procedureId: string, reason: string): FollowUpOutcome {
    this.metrics.ignored.inc();
    this.logger.log({ msg: 'infusion event ignored', procedure: procedureId, reason });
    return { status: 'ignored', reason };
  }
}

/** The CarePlan lists every Task generated for it, each once (If-Match: a concurrent change fails the transaction, the job retries). */
function activityEntry(carePlan: CarePlan, eventTasks: string[]): BundleEntry[] {
  const updated = withListedActivities(carePlan, eventTasks);
  return updated ? [updateEntry(updated, carePlan.meta!.versionId)] : [];
}

/** The planned DetectedIssues not on record yet (by their key identifier). */
function newIssues<T extends { resource: DetectedIssue }>(planned: T[], onRecord: DetectedIssue[]): T[] {
  const known = new Set(onRecord.flatMap((i) => (i.identifier ?? []).map((id) => `${id.system}|${id.value}`)));
  return planned.filter((p) => !(p.resource.identifier ?? []).some((id) => known.has(`${id.system}|${id.value}`)));
}

/**
 * A follow-up's request and Task, as plain creates: a new Task is always listed on the CarePlan, so the transaction
 * holding them always holds the CarePlan's If-Match update too.
 */
function toEntries(followUp: FollowUp, taskFullUrl: string, task: Task): BundleEntry[] {
  const entries: BundleEntry[] = [];
  if (followUp.request) {
    const request = {
      ...followUp.request,
      identifier: [{ system: APPLY_KEY_SYSTEM, value: followUp.key }],
    } as Resource;
    entries.push({
      fullUrl: followUp.requestFullUrl,
      resource: request,
      request: { method: 'POST', url: request.resourceType },
    });
  }
  entries.push({
    fullUrl: taskFullUrl,
    resource: task,
    request: { method: 'POST', url: 'Task' },
  });
  return entries;
}

const PAGE = 1000;

function keyOf(task: Task): string | undefined {
  return task.identifier?.find((i) => i.system === TASK_KEY_SYSTEM)?.value;
}
