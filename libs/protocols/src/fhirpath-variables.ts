import { evalFhirPathTyped, toTypedValue, type TypedValue } from '@medplum/core';
import type { Bundle } from '@medplum/fhirtypes';

/**
 * What a protocol's expressions can see. Each PlanDefinition input (DataRequirement) is bound as the
 * searchset Bundle it fetched (%bodyWeight.entry.resource...), because Medplum's FHIRPath binds a variable to
 * a single value, not a collection; scalars (e.g. %completedInfusionCount) are bound as they are.
 */
export type ProtocolVariables = Record<string, Bundle | number | string | boolean>;

export function toFhirPathVariables(variables: ProtocolVariables): Record<string, TypedValue> {
  const typed: Record<string, TypedValue> = {};
  for (const [name, value] of Object.entries(variables)) typed[`%${name}`] = toTypedValue(value);
  return typed;
}

/** Evaluates an expression; an error in the expression is reported, never thrown into a request. */
export function evaluate(expression: string, variables: ProtocolVariables, context?: unknown): unknown[] {
  const input = context === undefined ? [] : [toTypedValue(context)];
  return evalFhirPathTyped(expression, input, toFhirPathVariables(variables)).map((v): unknown => v.value);
}

/**
 * Applicability: true when the expression is exactly true, false when exactly false, undefined when it
 * yields nothing (data missing). Callers decide what missing data means for them.
 */
export function evaluateCondition(expression: string, variables: ProtocolVariables): boolean | undefined {
  const result = evaluate(expression, variables);
  if (result.length !== 1 || typeof result[0] !== 'boolean') return undefined;
  return result[0];
}
