import type { PlanDefinition, PlanDefinitionAction } from '@medplum/fhirtypes';
import { flattenActions } from './catalog';

/** True when the action fires on the named event (e.g. infusion-completed). */
export function isTriggeredBy(action: PlanDefinitionAction, triggerName: string): boolean {
  return Boolean(action.trigger?.some((t) => t.type === 'named-event' && t.name === triggerName));
}

/** Follow-up rules: actions that fire on a named event (e.g. infusion-completed), never at $apply. */
export function triggeredActions(plan: PlanDefinition, triggerName: string): PlanDefinitionAction[] {
  return flattenActions(plan.action ?? []).filter((a) => isTriggeredBy(a, triggerName));
}

/** Eligibility conditions: applicability conditions of the group actions (those that hold child actions). */
export function eligibilityConditions(plan: PlanDefinition) {
  return flattenActions(plan.action ?? [])
    .filter((a) => a.action?.length)
    .flatMap((a) => a.condition ?? [])
    .filter((c) => c.kind === 'applicability');
}
