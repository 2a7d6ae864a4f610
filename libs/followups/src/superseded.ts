import type { PlanDefinition, Procedure, Reference, Task } from '@medplum/fhirtypes';
import { flattenActions, PROTOCOL_ACTION_EXTENSION, type ProtocolCatalog } from '@kc/protocols';
import { isOpen, transition } from '@kc/task-states';
import type { InfusionCompleted } from './infusion-event';
import { isInfusion, type InfusionDefinition } from './infusion-history';

/** Actions that plan an infusion (first session, next session, booster), as opposed to a check or instructions. */
export function infusionFollowUpActions(
  plan: PlanDefinition,
  catalog: ProtocolCatalog,
  definition: InfusionDefinition,
): Set<string> {
  const ids = flattenActions(plan.action ?? [])
    .filter((action) => {
      const activity = catalog.activityDefinition(action.definitionCanonical);
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
 * What an infusion does to the open Tasks that planned infusions on its CarePlan. The Task that planned it is
 * done (output -> the Procedure): the one the Procedure names in basedOn, else the one due soonest that was
 * planned before the infusion. Others planned by infusions that ended before the latest one on record are
 * superseded. Judged against the latest infusion, so the outcome is the same in whatever order events arrive.
 * Post-infusion checks are never touched (each infusion needs its own).
 */
export function infusionTaskUpdates(input: {
  event: InfusionCompleted;
  procedure: Procedure;
  openTasks: Task[];
  history: Procedure[];
  definition: InfusionDefinition;
  infusionActions: Set<string>;
}): InfusionTaskUpdate[] {
  const endOf = new Map<string, number>();
  for (const procedure of input.history) {
    if (procedure.id && procedure.status === 'completed' && isInfusion(procedure, input.definition))
      endOf.set(procedure.id, infusionEnd(procedure));
  }
  const thisEnd = Date.parse(input.event.performed.end!);
  endOf.set(input.event.procedureId, thisEnd);
  let latestEnd = -Infinity;
  for (const end of endOf.values()) if (Number.isFinite(end) && end > latestEnd) latestEnd = end;

  const candidates = input.openTasks.filter((task) => isOpen(task) && input.infusionActions.has(actionOf(task)));
  // Planned before this infusion: by $apply (no trigger) or by an infusion that ended earlier.
  const plannedBefore = candidates.filter((task) => {
    const trigger = triggerOf(task);
    return trigger === undefined || (endOf.get(trigger) ?? Infinity) < thisEnd;
  });
  const named = new Set((input.procedure.basedOn ?? []).map((b) => b.reference));
  const fulfilled =
    plannedBefore.find((task) => named.has(`Task/${task.id}`) || named.has(task.focus?.reference)) ??
    [...plannedBefore].sort((a, b) => windowStart(a) - windowStart(b))[0];
  const by = { reference: `Procedure/${input.event.procedureId}` };
  const updates: InfusionTaskUpdate[] = fulfilled ? [{ task: fulfilled, outcome: 'done', by }] : [];
  for (const task of candidates) {
    if (task === fulfilled) continue;
    const trigger = triggerOf(task);
    const plannedAt = trigger === undefined ? -Infinity : endOf.get(trigger);
    if (
      plannedAt !== undefined &&
      plannedAt < latestEnd &&
      (trigger === undefined ? plannedBefore.includes(task) : true)
    ) {
      updates.push({ task, outcome: 'superseded', by });
    }
  }
  return updates;
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

function actionOf(task: Task): string {
  return task.extension?.find((e) => e.url === PROTOCOL_ACTION_EXTENSION)?.valueString ?? '';
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
