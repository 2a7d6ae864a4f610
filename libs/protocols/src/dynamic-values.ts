import type { Expression } from '@medplum/fhirtypes';

/** ActivityDefinition.dynamicValue and PlanDefinition.action.dynamicValue alike. */
export interface DynamicValue {
  path?: string;
  expression?: Expression;
}
import { evaluateExpression, type ProtocolVariables } from './fhirpath-variables';
import { UnsupportedElementError } from './unsupported';

export interface DynamicValueResult<T> {
  resource: T;
  /** dynamicValues that evaluated to nothing (e.g. no body weight on record), with their description. */
  unresolved: { path: string; description?: string }[];
}

/**
 * Applies dynamicValues (an ActivityDefinition's or an action's) to the resource instantiated from them: this is
 * where a weight-based dose becomes a number. Values are evaluated with the resource itself as context.
 */
export function applyDynamicValues<T extends object>(
  resource: T,
  dynamicValues: DynamicValue[] | undefined,
  variables: ProtocolVariables,
  element = 'dynamicValue',
): DynamicValueResult<T> {
  // Nothing to set: nothing to copy (the copy protects what the resource shares with its ActivityDefinition).
  if (!dynamicValues?.length) return { resource, unresolved: [] };
  // A JSON copy: requests are plain JSON, and structuredClone took 6.6 us where this takes 3.8 (a follow-up event
  // applies a dozen).
  const result = JSON.parse(JSON.stringify(resource)) as T;
  const unresolved: DynamicValueResult<T>['unresolved'] = [];
  (dynamicValues ?? []).forEach((dynamic, i) => {
    const at = `${element}.dynamicValue[${i}]`;
    if (!dynamic.path) throw new UnsupportedElementError('dynamicValue without a path', at);
    const path = dynamic.path;
    const values = evaluateExpression(dynamic.expression, variables, `${at}.expression`, result);
    if (values.length === 0 || values[0] === undefined) {
      unresolved.push({ path, description: dynamic.expression?.description });
      return;
    }
    setPath(result as Record<string, unknown>, path, values.length === 1 ? values[0] : values, `${at}.path`);
  });
  return { resource: result, unresolved };
}

/** Sets a simple FHIRPath path (a.b[0].c, optionally prefixed by the resource type) on a plain object. */
export function setPath(target: Record<string, unknown>, path: string, value: unknown, element = 'path'): void {
  const type = (target as { resourceType?: string }).resourceType;
  const relative = type && path.startsWith(`${type}.`) ? path.slice(type.length + 1) : path;
  const steps = relative.split('.').map((step) => {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$/.exec(step);
    if (!match) throw new UnsupportedElementError(`Unsupported dynamicValue path step "${step}" in ${path}`, element);
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
