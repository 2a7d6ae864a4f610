import type { PlanDefinition, PlanDefinitionAction } from '@medplum/fhirtypes';
import { contraindicationCheck, evaluateConditions, type Contraindication } from './applicability';
import type { DefinitionResolver } from './action-tree';
import type { ProtocolVariables } from './fhirpath-variables';

/**
 * The actions from the plan's top down to the action `actionId` (through nested PlanDefinitions), or undefined when
 * the plan has no such action.
 */
function pathTo(
  actions: PlanDefinitionAction[] | undefined,
  actionId: string,
  resolver: DefinitionResolver,
  depth = 0,
): PlanDefinitionAction[] | undefined {
  if (depth > 10) return undefined;
  for (const action of actions ?? []) {
    if (action.id === actionId) return [action];
    const nested = action.definitionCanonical ? resolver.resolve(action.definitionCanonical) : undefined;
    const children =
      nested?.resourceType === 'PlanDefinition' ? (nested as PlanDefinition).action : (action.action ?? undefined);
    const below = pathTo(children, actionId, resolver, depth + 1);
    if (below) return [action, ...below];
  }
  return undefined;
}

/**
 * The contraindications that gate one action of a plan, checked on the patient's data now: the applicability
 * conditions the data marks as contraindication checks, on the action and on every group above it (the ketamine
 * protocols put them on the group holding every infusion). Its other conditions (the phase gates) decided when its
 * Task was written and are not asked again. Overridden ones are marked, as $apply marks them.
 */
export function contraindicationsGating(
  plan: PlanDefinition,
  actionId: string,
  options: { variables: ProtocolVariables; overridden: ReadonlySet<string>; resolver: DefinitionResolver },
): Contraindication[] {
  const checks = (pathTo(plan.action, actionId, options.resolver) ?? []).flatMap((action) =>
    (action.condition ?? []).filter((c) => c.kind === 'applicability' && contraindicationCheck(c)),
  );
  if (!checks.length) return [];
  const element = `PlanDefinition/${plan.id ?? plan.url}`;
  return evaluateConditions({ condition: checks }, element, options.variables, options.overridden).contraindications;
}

/** Whether any contraindication check gates the action (and so whether the patient's data must be read for it). */
export function hasContraindicationChecks(plan: PlanDefinition, actionId: string, resolver: DefinitionResolver) {
  return (pathTo(plan.action, actionId, resolver) ?? []).some((action) =>
    (action.condition ?? []).some((c) => c.kind === 'applicability' && contraindicationCheck(c)),
  );
}
