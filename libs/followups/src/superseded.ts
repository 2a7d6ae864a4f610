import type {
  Coding,
  MedicationAdministration,
  MedicationRequest,
  PlanDefinition,
  Procedure,
  Reference,
  Task,
} from '@medplum/fhirtypes';
import {
  actionPhase,
  activityDefinitionIn,
  clinicDay,
  flattenActions,
  protocolActionOf,
  type DefinitionResolver,
} from '@kc/protocols';
import {
  isOpen,
  isOpenOrder,
  openOrdersOfSession,
  orderTaskIdOf,
  ordersApprovedOn,
  sessionBegunBy,
  transition,
  type OpenOrder,
} from '@kc/task-states';
import type { AdministrationRecords } from './infusion-as-given';

import type { InfusionCompleted } from './infusion-event';
import { isInfusion, type InfusionDefinition } from './infusion-history';

/** Actions that plan an infusion (first session, next session, booster), as opposed to a check or instructions. */
export function infusionFollowUpActions(
  plan: PlanDefinition,
  definitions: DefinitionResolver,
  definition: InfusionDefinition,
): Set<string> {
  const ids = flattenActions(plan.action ?? [])
    .filter((action) => {
      const activity = activityDefinitionIn(definitions, action.definitionCanonical);
      return activity?.url !== undefined && definition.canonicals.includes(activity.url);
    })
    .map((action) => action.id!);
  return new Set(ids);
}

export interface InfusionTaskUpdate {
  task: Task;
  /** done: this Task planned the infusion; superseded: a later infusion made it moot. */
  outcome: 'done' | 'superseded';
  by: Reference;
}

/**
 * What the infusions on record do to the open Tasks that planned infusions on a CarePlan. Each such Task is
 * answered by the first infusion after it was planned ($apply's first session: the first infusion at all). That
 * infusion fulfils it (done, output -> the Procedure); when several Tasks are answered by the same infusion, the
 * one the Procedure names in basedOn, else the one whose order the pump recorded giving, else the one due soonest, is
 * done and the others are superseded (since session 36 the pump's record counts: before, a session given under its
 * own order but due later than another was superseded and its order cancelled as moot). A session the pump recorded
 * giving during this infusion is answered by it, done, whatever infusion planned it (since session 37). Judged
 * on every infusion on record, so the outcome is the same in whatever order events are handled. Post-infusion
 * checks are never touched (each infusion needs its own).
 */
export function infusionTaskUpdates(input: {
  event: InfusionCompleted;
  procedure: Procedure;
  openTasks: Task[];
  history: Procedure[];
  definition: InfusionDefinition;
  infusionActions: Set<string>;
  /**
   * The Tasks whose order the pump recorded giving during this infusion (tasksThePumpGave): of the Tasks it answers,
   * the one done when the Procedure names none.
   */
  givenTaskIds?: ReadonlySet<string>;
  /**
   * The Tasks whose order the pump has begun at any time (tasksThePumpBegan): each is answered only by the infusion
   * during which the pump gave it (givenTaskIds), never superseded by another.
   */
  begunTaskIds?: ReadonlySet<string>;
  /** The clinic's time zone: the day an infusion is named by. UTC unless given. */
  zone?: string;
}): InfusionTaskUpdate[] {
  const infusions = new Map<string, { end: number; procedure: Procedure }>();
  for (const procedure of input.history) {
    if (procedure.id && procedure.status === 'completed' && isInfusion(procedure, input.definition))
      infusions.set(procedure.id, { end: infusionEnd(procedure), procedure });
  }
  infusions.set(input.event.procedureId, { end: Date.parse(input.event.performed.end!), procedure: input.procedure });
  const inOrder = [...infusions.entries()]
    .filter(([, i]) => Number.isFinite(i.end))
    .sort((a, b) => a[1].end - b[1].end);

  const answeredBy = new Map<string, Task[]>();
  const answerable = (t: Task) =>
    isOpen(t) &&
    input.infusionActions.has(protocolActionOf(t) ?? '') &&
    (!t.id || !input.begunTaskIds?.has(t.id) || Boolean(input.givenTaskIds?.has(t.id)));
  const answer = (procedureId: string, task: Task) =>
    answeredBy.set(procedureId, [...(answeredBy.get(procedureId) ?? []), task]);
  for (const task of input.openTasks.filter(answerable)) {
    // The pump's record says which infusion gave it, whatever came between its planning and now, and even when the
    // infusion that planned it is no longer on record (before session 37 such a session stayed open, order active).
    if (task.id && input.givenTaskIds?.has(task.id)) {
      answer(input.event.procedureId, task);
      continue;
    }
    const trigger = triggerOf(task);
    const plannedAt = trigger === undefined ? -Infinity : infusions.get(trigger)?.end;
    if (plannedAt === undefined) continue; // planned by an infusion no longer on record: leave it to the clinician
    const first = inOrder.find(([, i]) => i.end > plannedAt);
    if (first) answer(first[0], task);
  }
  const updates: InfusionTaskUpdate[] = [];
  for (const [procedureId, tasks] of answeredBy) {
    const named = new Set((infusions.get(procedureId)!.procedure.basedOn ?? []).map((b) => b.reference));
    // What the pump recorded is known for this event's infusion only (earlier ones were judged by their own events).
    const given = procedureId === input.event.procedureId ? input.givenTaskIds : undefined;
    const done =
      tasks.find(
        (t) => named.has(`Task/${t.id}`) || (t.focus?.reference !== undefined && named.has(t.focus.reference)),
      ) ??
      tasks.find((t) => t.id !== undefined && given?.has(t.id)) ??
      [...tasks].sort((a, b) => windowStart(a) - windowStart(b))[0];
    const by = answeredByInfusion(procedureId, infusions.get(procedureId)!.end, input.zone);
    // Every session the pump gave is done (its order was given), never superseded.
    const isDone = (t: Task) => t === done || (t.id !== undefined && Boolean(given?.has(t.id)));
    for (const task of tasks) updates.push({ task, outcome: isDone(task) ? 'done' : 'superseded', by });
  }
  return updates;
}

/**
 * The infusion that answered a Task, as its output names it: named by its day too, since the reason a revoked reminder
 * or a superseded Task gives is read by clinicians.
 */
export function answeredByInfusion(procedureId: string, end: number, zone?: string): Reference {
  return { reference: `Procedure/${procedureId}`, display: `infusion of ${clinicDay(end, zone)}` };
}

/**
 * The Tasks whose order the pump has begun or given, from the patient's open orders and what the pump recorded of
 * them: this service's (its order key), one approved on the EHR's order (`basedOn`, of `openTasks`; since session 42,
 * as its order is now closed with its session), or another open order of the session's chain (`sessionOrders`, by
 * Task id: the EHR's replacement of it, or one left open beside it, with what the pump recorded of each).
 */
export function tasksThePumpBegan(
  orders: MedicationRequest[],
  administrations: MedicationAdministration[],
  sessionOrders: ReadonlyMap<string, OpenOrder> = new Map(),
  openTasks: Task[] = [],
): Set<string> {
  const begun = requestsBegun(administrations);
  const begunReplacements = [...sessionOrders]
    .filter(([, open]) => openOrdersOfSession(open).some((o) => sessionBegunBy(o.administrations)))
    .map(([id]) => id);
  return new Set([...tasksOrderingAny(orders, begun), ...tasksApprovedOnAny(openTasks, begun), ...begunReplacements]);
}

/**
 * The Tasks whose order the pump recorded giving during an infusion (its administrations begun or given, by
 * `request`): the session this service ordered (its order key), one approved on the EHR's order (`basedOn`), or one
 * given under another open order of its chain (`sessionOrders`, by Task id: the EHR's replacement, or one left open).
 */
export function tasksThePumpGave(
  given: AdministrationRecords,
  openTasks: Task[],
  sessionOrders: ReadonlyMap<string, OpenOrder> = new Map(),
): Set<string> {
  const gave = requestsBegun(given.administrations);
  const approvedOnThem = tasksApprovedOnAny(openTasks, gave);
  const replacedThem = [...sessionOrders]
    .filter(([, open]) => openOrdersOfSession(open).some(({ order }) => gave.has(`${order.resourceType}/${order.id}`)))
    .map(([id]) => id);
  return new Set([...tasksOrderingAny(given.orders, gave), ...approvedOnThem, ...replacedThem]);
}

/**
 * This service's orders the pump recorded giving during an infusion, still open, whose Task is not among the plan's open
 * ones (deleted on the FHIR server, or closed): the infusion completes them itself, since no Task of theirs will. Before
 * session 37 an order given under a Task the EHR deleted stayed active (the deletion leaves a begun session to its
 * infusion, and the infusion reached orders only through their Tasks).
 */
export function ordersGivenWithoutOpenTask(given: AdministrationRecords, openTasks: Task[]): MedicationRequest[] {
  const gave = requestsBegun(given.administrations);
  const open = new Set(openTasks.map((t) => t.id));
  return given.orders.filter((o) => {
    const taskId = orderTaskIdOf(o);
    return taskId && !open.has(taskId) && isOpenOrder(o) && gave.has(`MedicationRequest/${o.id}`);
  });
}

/** The orders the pump has begun or given (the `request` of its administrations in progress, on hold or done). */
function requestsBegun(administrations: MedicationAdministration[]): Set<string> {
  return new Set(administrations.filter((a) => sessionBegunBy([a])).flatMap((a) => a.request?.reference ?? []));
}

/** The Tasks approved on one of the EHR's orders `requests` names (ordersApprovedOn): ids. */
function tasksApprovedOnAny(tasks: Task[], requests: Set<string>): string[] {
  return tasks.filter((t) => t.id && ordersApprovedOn(t).some((r) => requests.has(r))).map((t) => t.id!);
}

/** The Tasks whose approval wrote one of `orders` (by its key) that is among `requests`. */
function tasksOrderingAny(orders: MedicationRequest[], requests: Set<string>): string[] {
  return orders.flatMap((o) => {
    const taskId = orderTaskIdOf(o);
    return taskId && requests.has(`MedicationRequest/${o.id}`) ? [taskId] : [];
  });
}

/**
 * The treatment phase of an infusion: that of the Task it fulfils (the session or booster it was planned as), as
 * the protocol action that Task came from says. Undefined when it fulfils none (an infusion nobody planned).
 */
export function infusionPhase(
  updates: InfusionTaskUpdate[],
  procedureId: string,
  plan: PlanDefinition,
): Coding | undefined {
  const fulfilled = fulfilledBy(updates, procedureId);
  const actionId = fulfilled && protocolActionOf(fulfilled);
  return actionId ? actionPhase(flattenActions(plan.action ?? []).find((a) => a.id === actionId)) : undefined;
}

/** The Task this infusion fulfils (its session or booster), if it planned one. */
export function fulfilledBy(updates: InfusionTaskUpdate[], procedureId: string): Task | undefined {
  return updates.find((u) => u.outcome === 'done' && u.by.reference === `Procedure/${procedureId}`)?.task;
}

/** The Task as it is written back, through the state machine. */
export function applyInfusionUpdate(update: InfusionTaskUpdate, now: Date): Task {
  return update.outcome === 'done'
    ? transition(update.task, { event: 'complete', now, output: update.by })
    : transition(update.task, {
        event: 'supersede',
        now,
        output: update.by,
        reason: 'Superseded: a later infusion was completed',
      });
}

function triggerOf(task: Task): string | undefined {
  return /^Procedure\/(.+)$/.exec(task.reasonReference?.reference ?? '')?.[1];
}

function windowStart(task: Task): number {
  return Date.parse(task.restriction?.period?.start ?? '') || Infinity;
}

function infusionEnd(procedure: Procedure): number {
  return Date.parse(
    procedure.performedPeriod?.end ?? procedure.performedPeriod?.start ?? procedure.performedDateTime ?? '',
  );
}
