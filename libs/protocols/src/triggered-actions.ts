import type { PlanDefinition, PlanDefinitionAction } from '@medplum/fhirtypes';
import { flattenActions } from './catalog';

/** Follow-up rules: actions that fire on a named event (e.g. infusion-completed), never at $apply. */
export function triggeredActions(plan: PlanDefinition, triggerName: string): PlanDefinitionAction[] {
  return flattenActions(plan.action ?? []).filter((a) =>
    a.trigger?.some((t) => t.type === 'named-event' && t.name === triggerName),
  );
}

/** What $apply instantiates: leaf actions without a trigger. */
export function applyTimeActions(plan: PlanDefinition): PlanDefinitionAction[] {
  return flattenActions(plan.action ?? []).filter((a) => !a.trigger?.length && !a.action?.length);
}

/** Eligibility conditions: applicability conditions of the group actions (those that hold child actions). */
export function eligibilityConditions(plan: PlanDefinition) {
  return flattenActions(plan.action ?? [])
    .filter((a) => a.action?.length)
    .flatMap((a) => a.condition ?? [])
    .filter((c) => c.kind === 'applicability');
}
