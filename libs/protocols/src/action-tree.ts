import type {
  ActivityDefinition,
  OperationOutcomeIssue,
  PlanDefinition,
  PlanDefinitionAction,
  PlanDefinitionActionCondition,
} from '@medplum/fhirtypes';
import { evaluateConditions, type Contraindication } from './applicability';
import type { ProtocolVariables } from './fhirpath-variables';
import { UnsupportedElementError } from './unsupported';

/** Finds the ActivityDefinition or PlanDefinition a definitionCanonical names (the catalog, or the FHIR server's). */
export interface DefinitionResolver {
  resolve(canonical: string): { resourceType: string } | undefined;
}

/** A PlanDefinition and every definition it reaches, from the catalog or the FHIR server. */
export interface ResolvedPlan {
  plan: PlanDefinition;
  definitions: DefinitionResolver;
}

/** The ActivityDefinition a canonical names among a plan's definitions; undefined for anything else or nothing. */
export function activityDefinitionIn(
  definitions: DefinitionResolver,
  canonical: string | undefined,
): ActivityDefinition | undefined {
  const found = canonical ? definitions.resolve(canonical) : undefined;
  return found?.resourceType === 'ActivityDefinition' ? (found as ActivityDefinition) : undefined;
}

/** Which actions a walk instantiates: $apply takes untriggered ones, the follow-up worker one named event's. */
export type ActionFilter = (action: PlanDefinitionAction) => 'instantiate' | 'skip' | 'placeholder';

/** An action of the tree after its conditions (and its ancestors') were evaluated. */
export interface SelectedAction {
  action: PlanDefinitionAction;
  element: string;
  /** For a leaf: the ActivityDefinition it instantiates, if any. */
  activity?: ActivityDefinition;
  /** Children that survived (groups and nested PlanDefinitions). */
  children: SelectedAction[];
  /** Start/stop conditions for the RequestGroup. */
  runtime: PlanDefinitionActionCondition[];
  /** A triggered action shown, not instantiated (triggers other than the service's own). */
  placeholder?: boolean;
}

export interface Selection {
  roots: SelectedAction[];
  contraindications: Contraindication[];
  notes: OperationOutcomeIssue[];
}

/**
 * Walks a PlanDefinition's actions at every nesting level, through definitionCanonical into nested
 * PlanDefinitions, evaluating each action's conditions: an action that is not applicable is left out with
 * everything under it. Pure: definitions come from the resolver, data from the variables.
 */
export function selectActions(plan: PlanDefinition, options: SelectOptions): Selection {
  const walk: Walk = { options, selection: { roots: [], contraindications: [], notes: [] }, seen: new Set() };
  walk.selection.roots = walkActions(walk, plan.action, `PlanDefinition/${plan.id ?? plan.url}`, 0);
  return walk.selection;
}

export interface SelectOptions {
  variables: ProtocolVariables;
  overridden: ReadonlySet<string>;
  resolver: DefinitionResolver;
  filter: ActionFilter;
}

/** One walk's state: what it was asked, what it found so far, which contraindication codes it already reported. */
interface Walk {
  options: SelectOptions;
  selection: Selection;
  seen: Set<string>;
}

function walkActions(
  walk: Walk,
  actions: PlanDefinitionAction[] | undefined,
  element: string,
  depth: number,
): SelectedAction[] {
  if (depth > 10) throw new UnsupportedElementError('PlanDefinitions nest more than 10 deep (a cycle?)', element);
  return (actions ?? []).flatMap((action, i) => selectAction(walk, action, `${element}.action[${i}]`, depth) ?? []);
}

/** One action: skipped, shown as a placeholder, left out by its conditions, or selected with its children. */
function selectAction(walk: Walk, action: PlanDefinitionAction, at: string, depth: number): SelectedAction | undefined {
  const { options } = walk;
  const kind =
    action.action?.length || isNestedPlan(action, options.resolver)
      ? relevantGroup(action, options)
      : options.filter(action);
  if (kind === 'skip') return undefined;
  if (kind === 'placeholder')
    return { action, element: at, children: [], runtime: action.condition ?? [], placeholder: true };
  const verdict = evaluateConditions(action, at, options.variables, options.overridden);
  recordVerdict(walk, verdict);
  if (!verdict.applicable) return undefined;
  const definition = resolveDefinition(action, at, options.resolver);
  if (definition?.resourceType === 'PlanDefinition' || action.action?.length) {
    const nested = definition?.resourceType === 'PlanDefinition' ? (definition as PlanDefinition) : undefined;
    const children = nested
      ? walkActions(walk, nested.action, `PlanDefinition/${nested.id}`, depth + 1)
      : walkActions(walk, action.action, at, depth + 1);
    return children.length ? { action, element: at, children, runtime: verdict.runtime } : undefined;
  }
  return {
    action,
    element: at,
    activity: definition as ActivityDefinition | undefined,
    children: [],
    runtime: verdict.runtime,
  };
}

/** Each contraindication code once, in the order met; every note. */
function recordVerdict(walk: Walk, verdict: ReturnType<typeof evaluateConditions>): void {
  for (const c of verdict.contraindications) {
    if (!walk.seen.has(c.code.code ?? '')) walk.selection.contraindications.push(c);
    walk.seen.add(c.code.code ?? '');
  }
  walk.selection.notes.push(...verdict.notes);
}

/** Leaves of a selection in document order. */
export function leaves(actions: SelectedAction[]): SelectedAction[] {
  return actions.flatMap((a) => (a.children.length ? leaves(a.children) : a.placeholder ? [] : [a]));
}

/** A group is walked when its own trigger lets it; its leaves decide for themselves. */
function relevantGroup(
  action: PlanDefinitionAction,
  options: { filter: ActionFilter },
): 'instantiate' | 'skip' | 'placeholder' {
  return action.trigger?.length ? options.filter(action) : 'instantiate';
}

function isNestedPlan(action: PlanDefinitionAction, resolver: DefinitionResolver): boolean {
  return Boolean(
    action.definitionCanonical && resolver.resolve(action.definitionCanonical)?.resourceType === 'PlanDefinition',
  );
}

function resolveDefinition(action: PlanDefinitionAction, at: string, resolver: DefinitionResolver) {
  if (action.definitionUri)
    throw new UnsupportedElementError(
      'definitionUri is not instantiated; use definitionCanonical',
      `${at}.definitionUri`,
    );
  if (!action.definitionCanonical) return undefined;
  const found = resolver.resolve(action.definitionCanonical);
  if (!found)
    throw new UnsupportedElementError(
      `definitionCanonical ${action.definitionCanonical} was not found`,
      `${at}.definitionCanonical`,
    );
  if (found.resourceType !== 'ActivityDefinition' && found.resourceType !== 'PlanDefinition') {
    throw new UnsupportedElementError(`definitionCanonical names a ${found.resourceType}`, `${at}.definitionCanonical`);
  }
  return found;
}
