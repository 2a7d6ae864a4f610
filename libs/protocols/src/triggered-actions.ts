import type { PlanDefinition, PlanDefinitionAction } from '@medplum/fhirtypes';
import { isTriggeredBy } from './action-trigger';
import { flattenActions } from './catalog';

export { isTriggeredBy };

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
