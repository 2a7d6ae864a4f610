import type { PlanDefinitionAction } from '@medplum/fhirtypes';

/** True when the action fires on the named event (e.g. infusion-completed). */
export function isTriggeredBy(action: PlanDefinitionAction, triggerName: string): boolean {
  return Boolean(action.trigger?.some((t) => t.type === 'named-event' && t.name === triggerName));
}
