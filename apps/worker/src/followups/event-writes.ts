import type {
  BundleEntry,
  CarePlan,
  DetectedIssue,
  MedicationRequest,
  Procedure,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { updateEntry } from '@kc/fhir';
import {
  answeredByInfusion,
  applyInfusionUpdate,
  infusionTaskUpdates,
  ordersGivenWithoutOpenTask,
  remindersEndedBy,
  tasksThePumpBegan,
  tasksThePumpGave,
  type FollowUp,
  type InfusionCompleted,
  type InfusionDefinition,
} from '@kc/followups';
import { APPLY_KEY_SYSTEM, TASK_KEY_SYSTEM, withListedActivities } from '@kc/protocols';
import {
  changeProvenance,
  openOrdersOfSession,
  orderAnsweredBy,
  ordersApprovedOn,
  orderTaskIdOf,
  ANSWERED_BY_AN_INFUSION,
  THIS_SERVICE,
  type OpenOrder,
} from '@kc/task-states';
import type { EventSurroundings } from './follow-up-reads';

/**
 * An infusion event's writes, from what the pure rules decided: the Tasks it answers (done, superseded) with their
 * orders and pending reminders, its new follow-ups as creates, the CarePlan's activity list, its new contraindications.
 * Transaction entries only: FollowUpService sends them.
 */

/**
 * What an event's reads found, and the EHR's replacements of approved sessions' orders (a dose changed in the EHR), read
 * only when the patient has one open: the order an answered session's infusion closes, and the one the pump gives.
 * `sessionOrders`: every open order of the approved sessions' chains, by Task id, when read (withSessionOrders).
 */
export type Surroundings = EventSurroundings & { sessionOrders?: Map<string, OpenOrder> };

/** What the pump recorded of the patient's sessions, as infusionTaskUpdates weighs it: read once per event. */
export interface PumpRecords {
  givenTaskIds: Set<string>;
  begunTaskIds: Set<string>;
}

export function pumpRecordsOf(around: Surroundings): PumpRecords {
  // The EHR's replacement of a session's order, begun or given at the pump, counts as the session's own.
  return {
    givenTaskIds: tasksThePumpGave(around.given, around.openTasks, around.sessionOrders),
    begunTaskIds: tasksThePumpBegan(around.orders, around.ordersAdministered, around.sessionOrders, around.openTasks),
  };
}

/**
 * Fulfilled / superseded: judged on the open Tasks and the ones about to be created (an infusion already on
 * record after this one answers them at once, whatever order the events arrive in). New Tasks are written in
 * their answered state; existing ones get If-Match updates, and so do their reminders still pending (revoked) and
 * their orders (completed when given, cancelled when a later infusion made them moot).
 */
export function answeredTaskWrites(input: {
  event: InfusionCompleted;
  procedure: Procedure;
  infusion: InfusionDefinition;
  infusionActions: Set<string>;
  around: Surroundings;
  pump: PumpRecords;
  newTasks: (FollowUp & { fullUrl: string })[];
  now: Date;
  zone?: string;
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
        ...input.pump,
        zone: input.zone,
      })
    : [];
  const pending = new Map(newTasks.map((f) => [f.task, f]));
  const created = new Map(newTasks.map((f) => [f.fullUrl, f.task]));
  const updateEntries: BundleEntry[] = [];
  const counts = { done: 0, superseded: 0, remindersRevoked: 0, ordersClosed: 0 };
  // Each order by the Task whose approval wrote it; the EHR's open orders by reference, for sessions approved on one.
  const orders = new Map(input.around.orders.map((o) => [orderTaskIdOf(o), o]));
  const openOrders = new Map(input.around.orders.map((o) => [`MedicationRequest/${o.id}`, o]));
  for (const update of updates) {
    const next = applyInfusionUpdate(update, now);
    const newOne = pending.get(update.task);
    if (newOne) created.set(newOne.fullUrl, next);
    else updateEntries.push(updateEntry(next, update.task.meta!.versionId));
    counts[update.outcome === 'done' ? 'done' : 'superseded']++;
    // An approved Task's order: given, or no longer to be given. The EHR's order it was approved on (`onOrder`) too:
    // before session 42 that stayed active after its session was given, to be given again.
    const order = update.task.id
      ? (orders.get(update.task.id) ??
        input.around.sessionOrders?.get(update.task.id)?.order ??
        approvedOnOpen(update.task, openOrders))
      : undefined;
    // Written once, however many sessions it is the order of (two approved on one EHR order, as a build before session
    // 42 allowed: a second update of it failed the whole transaction).
    if (order && !writes(updateEntries, order)) {
      updateEntries.push(updateEntry(orderAnsweredBy(order, update.outcome, update.by), order.meta?.versionId));
      counts.ordersClosed++;
      // The EHR's orders of the session left open beside it (replacing it, or replaced with it) go with it too: read
      // whenever the patient has an open EHR order naming another (withSessionOrders), which any of them is.
      const beside = openOrdersOfSession(input.around.sessionOrders?.get(update.task.id!)).map((e) => e.order);
      for (const replacement of beside) {
        if (writes(updateEntries, replacement)) continue;
        updateEntries.push(
          updateEntry(orderAnsweredBy(replacement, update.outcome, update.by), replacement.meta?.versionId),
        );
        counts.ordersClosed++;
      }
    }
  }
  // Orders the pump gave during this infusion that no open Task answers (their Task deleted on the server): given.
  const by = answeredByInfusion(input.event.procedureId, Date.parse(input.event.performed.end!), input.zone);
  for (const order of ordersGivenWithoutOpenTask(input.around.given, input.around.openTasks)) {
    if (writes(updateEntries, order)) continue;
    updateEntries.push(updateEntry(orderAnsweredBy(order, 'done', by), order.meta?.versionId));
    counts.ordersClosed++;
  }
  // New Tasks have no reminders yet (a Task gets them when approved).
  const revoked = remindersEndedBy(
    updates.filter((u) => !pending.has(u.task)),
    input.around.reminders,
  );
  updateEntries.push(...revoked.map((r) => updateEntry(r, r.meta!.versionId)));
  counts.remindersRevoked = revoked.length;
  return { created, updateEntries, counts, provenance: answeredProvenance(input.event, updateEntries, now) };
}

/**
 * Who changed what an infusion answered, and why, for an EHR or an auditor reading the orders and Tasks alone (a
 * ketamine order completed, a session superseded): one Provenance naming the service, the infusion as its source,
 * every resource the event updated as its targets, in the event's transaction. None when it updated nothing. Since
 * session 60; before, only Medplum's `meta.author` (and no HAPI field) said who had.
 */
function answeredProvenance(event: InfusionCompleted, updates: BundleEntry[], now: Date): BundleEntry[] {
  if (!updates.length) return [];
  const provenance = changeProvenance({
    targets: updates.map(({ resource }) => ({ reference: `${resource!.resourceType}/${resource!.id}` })),
    who: THIS_SERVICE,
    activity: ANSWERED_BY_AN_INFUSION,
    now,
    reason: `The infusion charted${event.performed.end ? ` ending ${event.performed.end}` : ''} gave or made moot what it answered`,
  });
  provenance.entity = [{ role: 'source', what: { reference: `Procedure/${event.procedureId}` } }];
  return [{ resource: provenance, request: { method: 'POST', url: 'Provenance' } }];
}

/** The CarePlan lists every Task generated for it, each once (If-Match: a concurrent change fails the transaction, the job retries). */
export function activityEntry(carePlan: CarePlan, eventTasks: string[]): BundleEntry[] {
  const updated = withListedActivities(carePlan, eventTasks);
  return updated ? [updateEntry(updated, carePlan.meta!.versionId)] : [];
}

/** The planned DetectedIssues not on record yet (by their key identifier). */
export function newIssues<T extends { resource: DetectedIssue }>(planned: T[], onRecord: DetectedIssue[]): T[] {
  const known = new Set(onRecord.flatMap((i) => (i.identifier ?? []).map((id) => `${id.system}|${id.value}`)));
  return planned.filter((p) => !(p.resource.identifier ?? []).some((id) => known.has(`${id.system}|${id.value}`)));
}

/**
 * A follow-up's request and Task, as plain creates: a new Task is always listed on the CarePlan, so the transaction
 * holding them always holds the CarePlan's If-Match update too.
 */
export function toEntries(followUp: FollowUp, taskFullUrl: string, task: Task): BundleEntry[] {
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

/** The order an approval of this Task wrote, among the patient's orders still to be given. */
export function orderOf(task: Task | undefined, orders: MedicationRequest[]): MedicationRequest | undefined {
  return task?.id ? orders.find((o) => orderTaskIdOf(o) === task.id) : undefined;
}

export function keyOf(task: Task): string | undefined {
  return task.identifier?.find((i) => i.system === TASK_KEY_SYSTEM)?.value;
}

/** Whether the transaction's entries write this resource already. */
function writes(entries: BundleEntry[], resource: Resource): boolean {
  return entries.some((e) => e.resource?.resourceType === resource.resourceType && e.resource.id === resource.id);
}

/** The open order written outside this service that a session was approved on (ordersApprovedOn), when read. */
function approvedOnOpen(task: Task, openOrders: Map<string, MedicationRequest>): MedicationRequest | undefined {
  return ordersApprovedOn(task)
    .map((r) => openOrders.get(r))
    .find((o) => o !== undefined);
}
