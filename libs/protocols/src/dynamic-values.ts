import type { ActivityDefinitionDynamicValue } from '@medplum/fhirtypes';
import { evaluate, type ProtocolVariables } from './fhirpath-variables';

export interface DynamicValueResult<T> {
  resource: T;
  /** dynamicValues that evaluated to nothing (e.g. no body weight on record), with their description. */
  unresolved: { path: string; description?: string }[];
}

/**
 * Applies an ActivityDefinition's dynamicValues to the resource instantiated from it: this is where a
 * weight-based dose becomes a number. Values are evaluated with the resource itself as context.
 */
export function applyDynamicValues<T extends object>(
  resource: T,
  dynamicValues: ActivityDefinitionDynamicValue[] | undefined,
  variables: ProtocolVariables,
): DynamicValueResult<T> {
  const result = structuredClone(resource);
  const unresolved: DynamicValueResult<T>['unresolved'] = [];
  for (const dynamic of dynamicValues ?? []) {
    const expression = dynamic.expression?.expression;
    const values = expression ? evaluate(expression, variables, result) : [];
    if (values.length === 0 || values[0] === undefined) {
      unresolved.push({ path: dynamic.path, description: dynamic.expression?.description });
      continue;
    }
    setPath(result as Record<string, unknown>, dynamic.path, values.length === 1 ? values[0] : values);
  }
  return { resource: result, unresolved };
}

/** Sets a simple FHIRPath-like path (a.b[0].c) on a plain object, creating what is missing. */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const steps = path.split('.').map((step) => {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$/.exec(step);
    if (!match) throw new Error(`Unsupported dynamicValue path step "${step}" in ${path}`);
    return { name: match[1], index: match[2] === undefined ? undefined : Number(match[2]) };
  });
  let node: Record<string, unknown> = target;
  steps.forEach((step, i) => {
    const last = i === steps.length - 1;
    if (step.index === undefined) {
      if (last) node[step.name] = value;
      else node = (node[step.name] ??= {}) as Record<string, unknown>;
      return;
    }
    const list = (node[step.name] ??= []) as unknown[];
    if (last) list[step.index] = value;
    else node = (list[step.index] ??= {}) as Record<string, unknown>;
  });
}
