import type { CarePlan, DetectedIssue, PlanDefinition, PlanDefinitionAction } from '@medplum/fhirtypes';
import { carePlanKeyOf, contraindicationIssue } from './apply-plan-definition';
import { contraindicationCheck, evaluateConditions, type Contraindication } from './applicability';
import { overriddenContraindications } from './contraindication-state';
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
  const checks = checksGating(plan, actionId, options.resolver);
  if (!checks.length) return [];
  const element = `PlanDefinition/${plan.id ?? plan.url}`;
  return evaluateConditions({ condition: checks }, element, options.variables, options.overridden).contraindications;
}

/** Whether any contraindication check gates the action (and so whether the patient's data must be read for it). */
export function hasContraindicationChecks(plan: PlanDefinition, actionId: string, resolver: DefinitionResolver) {
  return checksGating(plan, actionId, resolver).length > 0;
}

/** The contraindication checks on the action and on every action above it. */
function checksGating(plan: PlanDefinition, actionId: string, resolver: DefinitionResolver) {
  return (pathTo(plan.action, actionId, resolver) ?? []).flatMap((action) =>
    (action.condition ?? []).filter((c) => c.kind === 'applicability' && contraindicationCheck(c)),
  );
}

/**
 * The DetectedIssues to record for a plan's patient now: the contraindications found on the data that gate any of
 * `actionIds` (the plan's Tasks awaiting approval), not overridden, and not on record for the plan already (an
 * unresolved one already blocks; a withdrawn one is the clinic's call). Each is the plan's one issue for its code
 * (contraindicationIssue), written as a conditional create.
 */
export function contraindicationsToRecord(input: {
  plan: PlanDefinition;
  actionIds: string[];
  variables: ProtocolVariables;
  carePlan: CarePlan;
  patientId: string;
  /** The DetectedIssues implicating the plan. */
  issues: DetectedIssue[];
  resolver: DefinitionResolver;
  now: Date;
  /** Where it was found, for the issue's detail. */
  foundWhen: string;
}): ReturnType<typeof contraindicationIssue>[] {
  const onRecord = new Set(input.issues.flatMap((i) => (i.code?.coding ?? []).map((c) => c.code)));
  const overridden = overriddenContraindications(input.issues);
  const found = new Map<string, Contraindication>();
  for (const actionId of input.actionIds)
    for (const c of contraindicationsGating(input.plan, actionId, {
      variables: input.variables,
      overridden,
      resolver: input.resolver,
    }))
      if (!c.overridden && !onRecord.has(c.code.code)) found.set(c.code.code ?? '', c);
  return [...found.values()].map((c) =>
    contraindicationIssue(c, {
      carePlanKey: carePlanKeyOf(input.carePlan),
      carePlan: { reference: `CarePlan/${input.carePlan.id}` },
      patient: { reference: `Patient/${input.patientId}` },
      now: input.now,
      detail: `Found ${input.foundWhen}: nothing it affects is ordered until a clinician overrides it with a reason.`,
    }),
  );
}
