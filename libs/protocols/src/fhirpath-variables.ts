import { evalFhirPathTyped, LRUCache, toTypedValue, type FhirPathAtom, type TypedValue } from '@medplum/core';
import type { Bundle, Expression, Resource } from '@medplum/fhirtypes';
import { UnsupportedElementError } from './unsupported';

/**
 * What a protocol's expressions can see: each PlanDefinition input (DataRequirement.id) bound as the searchset
 * Bundle it fetched (%bodyWeight.entry.resource...), because Medplum's FHIRPath binds a variable to a single
 * value, not a collection; %subject/%patient/%context (the Patient), %resource (the PlanDefinition),
 * %encounter/%practitioner/%organization when given; scalars (e.g. %completedInfusionCount) as they are.
 */
export type ProtocolVariables = Record<string, Bundle | Resource | number | string | boolean>;

const FHIRPATH = new Set(['text/fhirpath', 'text/x-fhirpath']);

/**
 * Parsed expressions, by their text: a protocol's few dozen expressions are evaluated for every patient and every
 * event, and parsing was a third of the evaluation (8% of a $apply). Bounded, as PlanDefinitions posted inline
 * bring expressions of their own.
 */
const PARSED = new LRUCache<FhirPathAtom>(2000);

export function toFhirPathVariables(variables: ProtocolVariables): Record<string, TypedValue> {
  const typed: Record<string, TypedValue> = {};
  for (const [name, value] of Object.entries(variables)) typed[`%${name}`] = toTypedValue(value);
  return typed;
}

/**
 * Evaluates an Expression. Only FHIRPath can be evaluated here: any other language (text/cql without compiled
 * ELM, for instance) is refused with the element it sits on, never treated as true. A FHIRPath error is refused
 * the same way, so a broken expression reaches its author rather than a patient.
 */
export function evaluateExpression(
  expression: Expression | undefined,
  variables: ProtocolVariables,
  element: string,
  context?: unknown,
): unknown[] {
  if (!expression?.expression) throw new UnsupportedElementError('Expression without an expression string', element);
  if (!FHIRPATH.has(expression.language ?? '')) {
    throw new UnsupportedElementError(
      `Expression language "${expression.language ?? '(none)'}" cannot be evaluated here; only text/fhirpath is supported`,
      `${element}.language`,
    );
  }
  try {
    return evaluate(expression.expression, variables, context);
  } catch (err) {
    throw new UnsupportedElementError(`FHIRPath error: ${(err as Error).message}`, `${element}.expression`);
  }
}

/** Evaluates a FHIRPath string; errors are thrown to the caller. */
export function evaluate(expression: string, variables: ProtocolVariables, context?: unknown): unknown[] {
  const input = context === undefined ? [] : [toTypedValue(context)];
  return evalFhirPathTyped(expression, input, toFhirPathVariables(variables), PARSED).map((v): unknown => v.value);
}

/**
 * A condition's verdict: true when the expression is exactly true, false when exactly false, undefined when it
 * yields nothing or not a boolean. The CPG rule applies: only true makes an action applicable.
 */
export function evaluateCondition(expression: string, variables: ProtocolVariables): boolean | undefined {
  const result = evaluate(expression, variables);
  if (result.length !== 1 || typeof result[0] !== 'boolean') return undefined;
  return result[0];
}

export function verdict(values: unknown[]): boolean | undefined {
  return values.length === 1 && typeof values[0] === 'boolean' ? values[0] : undefined;
}
