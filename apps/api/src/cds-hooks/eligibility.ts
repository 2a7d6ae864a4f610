import type { Bundle, PlanDefinition, Resource } from '@medplum/fhirtypes';
import { eligibilityConditions, evaluateCondition, flattenActions, type ProtocolVariables } from '@kc/protocols';

/**
 * Pure: a protocol's eligibility conditions (the applicability conditions in fhir-profiles/) evaluated against a
 * patient's data, with the records that make each failing condition fail. No Nest, no I/O.
 */

export interface FailedCondition {
  /** The contraindication code (condition expression.name, service CodeSystem). */
  code: string;
  /** The clinician-facing text (expression.description). */
  description: string;
  /** The records that, each on its own, make the condition fail. */
  evidence: Resource[];
  /** Variables the expression reads that had no data (e.g. "no pregnancy status on record"). */
  emptyVariables: string[];
}

export interface UncheckedCondition {
  code: string;
  description: string;
}

export interface EligibilityVerdict {
  failed: FailedCondition[];
  /** Conditions that evaluated to nothing: not enough data on record to check them. */
  unchecked: UncheckedCondition[];
}

const EMPTY: Bundle = { resourceType: 'Bundle', type: 'searchset', entry: [] };
/** Upper bound of records tried one by one as evidence per variable (a patient's Condition list, at most). */
const MAX_EVIDENCE_CANDIDATES = 500;

export interface ProtocolInput {
  plan: PlanDefinition;
  /** The patient's data as the protocol's inputs declare it (see patientDataQueries). */
  variables: ProtocolVariables;
}

/**
 * Evaluates every eligibility condition of the given protocols, per contraindication code: a code fails when
 * any protocol's condition with that name is false, is unchecked when none fails and one yields nothing.
 */
export function evaluateEligibility(inputs: ProtocolInput[]): EligibilityVerdict {
  const failed = new Map<string, FailedCondition>();
  const unchecked = new Map<string, UncheckedCondition>();
  for (const { plan, variables } of inputs) {
    for (const condition of eligibilityConditions(plan)) {
      const expression = condition.expression?.expression;
      if (!expression) continue;
      const code = condition.expression?.name ?? 'contraindication';
      const description = condition.expression?.description ?? code;
      if (failed.has(code)) continue;
      const verdict = evaluateCondition(expression, variables);
      if (verdict === false) {
        unchecked.delete(code);
        failed.set(code, { code, description, ...evidenceFor(expression, variables) });
      } else if (
        (verdict === undefined || readsNothing(expression, variables, latestValueInputs(plan))) &&
        !unchecked.has(code)
      ) {
        unchecked.set(code, { code, description });
      }
    }
  }
  return { failed: [...failed.values()], unchecked: [...unchecked.values()] };
}

/**
 * True when every searchset the expression reads came back empty: the check passed only because nothing is on
 * record (the protocols' checks are written to pass on missing data, which $apply reports and this says too).
 */
function readsNothing(expression: string, variables: ProtocolVariables, latest: Set<string>): boolean {
  const bundles = variablesOf(expression).filter((name) => isBundle(variables[name]));
  return (
    bundles.length > 0 &&
    bundles.every((name) => latest.has(name) && resourcesOf(variables[name] as Bundle).length === 0)
  );
}

/**
 * Inputs that ask for the latest value (DataRequirement.limit 1, e.g. the latest blood pressure): no record means
 * unknown. A list input (every Condition) with no record means there is none.
 */
function latestValueInputs(plan: PlanDefinition): Set<string> {
  const inputs = flattenActions(plan.action ?? []).flatMap((a) => a.input ?? []);
  return new Set(inputs.filter((i) => i.id && i.limit === 1).map((i) => i.id!));
}

/** The %variables an expression reads. */
export function variablesOf(expression: string): string[] {
  return [...new Set([...expression.matchAll(/%([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]))];
}

/**
 * Which records make a failing condition fail: a record is evidence when the condition still fails with that
 * record alone as its variable's data and every other searchset variable emptied (scalars kept). For conditions
 * that only fail through a combination of records, falls back to every record the expression reads.
 */
export function evidenceFor(
  expression: string,
  variables: ProtocolVariables,
): { evidence: Resource[]; emptyVariables: string[] } {
  const read = variablesOf(expression).filter((name) => name in variables);
  const bundles = read.filter((name) => isBundle(variables[name]));
  const emptyVariables = bundles.filter((name) => resourcesOf(variables[name] as Bundle).length === 0);
  const emptied: ProtocolVariables = { ...variables };
  for (const name of bundles) emptied[name] = EMPTY;
  const evidence: Resource[] = [];
  for (const name of bundles) {
    const bundle = variables[name] as Bundle;
    for (const entry of (bundle.entry ?? []).slice(0, MAX_EVIDENCE_CANDIDATES)) {
      if (!entry.resource) continue;
      const alone = { ...emptied, [name]: { ...bundle, entry: [entry] } };
      if (evaluateCondition(expression, alone) === false) evidence.push(entry.resource);
    }
  }
  if (evidence.length === 0)
    for (const name of bundles) evidence.push(...resourcesOf(variables[name] as Bundle).slice(0, 5));
  return { evidence, emptyVariables };
}

function isBundle(value: unknown): value is Bundle {
  return typeof value === 'object' && value !== null && (value as Resource).resourceType === 'Bundle';
}

function resourcesOf(bundle: Bundle): Resource[] {
  return (bundle.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
}
