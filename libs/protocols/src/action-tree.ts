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
export function selectActions(
  plan: PlanDefinition,
  options: {
    variables: ProtocolVariables;
    overridden: ReadonlySet<string>;
    resolver: DefinitionResolver;
    filter: ActionFilter;
  },
): Selection {
  const selection: Selection = { roots: [], contraindications: [], notes: [] };
  const seen = new Set<string>();
  const walk = (actions: PlanDefinitionAction[] | undefined, element: string, depth: number): SelectedAction[] => {
    if (depth > 10) throw new UnsupportedElementError('PlanDefinitions nest more than 10 deep (a cycle?)', element);
    const selected: SelectedAction[] = [];
    (actions ?? []).forEach((action, i) => {
      const at = `${element}.action[${i}]`;
      const kind =
        action.action?.length || isNestedPlan(action, options.resolver)
          ? relevantGroup(action, options)
          : options.filter(action);
      if (kind === 'skip') return;
      if (kind === 'placeholder') {
        selected.push({ action, element: at, children: [], runtime: action.condition ?? [], placeholder: true });
        return;
      }
      const verdict = evaluateConditions(action, at, options.variables, options.overridden);
      for (const c of verdict.contraindications) {
        if (!seen.has(c.code.code ?? '')) selection.contraindications.push(c);
        seen.add(c.code.code ?? '');
      }
      selection.notes.push(...verdict.notes);
      if (!verdict.applicable) return;
      const definition = resolveDefinition(action, at, options.resolver);
      if (definition?.resourceType === 'PlanDefinition') {
        const nested = definition as PlanDefinition;
        const children = walk(nested.action, `PlanDefinition/${nested.id}`, depth + 1);
        if (children.length) selected.push({ action, element: at, children, runtime: verdict.runtime });
        return;
      }
      if (action.action?.length) {
        const children = walk(action.action, at, depth + 1);
        if (children.length) selected.push({ action, element: at, children, runtime: verdict.runtime });
        return;
      }
      selected.push({
        action,
        element: at,
        activity: definition as ActivityDefinition | undefined,
        children: [],
        runtime: verdict.runtime,
      });
    });
    return selected;
  };
  selection.roots = walk(plan.action, `PlanDefinition/${plan.id ?? plan.url}`, 0);
  return selection;
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
