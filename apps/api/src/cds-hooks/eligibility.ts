import type { Bundle, PlanDefinition, Resource } from '@medplum/fhirtypes';
import {
  contraindicationCheck,
  contraindicationEvidence,
  eligibilityConditions,
  evaluateCondition,
  flattenActions,
  type ProtocolVariables,
} from '@kc/protocols';

/**
 * Pure: a protocol's contraindication checks (the applicability conditions fhir-profiles/ marks with the
 * `contraindication` extension) evaluated against a patient's data, with the records each check's own evidence
 * expression names: the same definition $apply and the follow-up worker use (libs/protocols). No Nest, no I/O.
 */

export interface FailedCondition {
  /** The contraindication code (condition expression.name, service CodeSystem). */
  code: string;
  /** The clinician-facing text (expression.description). */
  description: string;
  /** The records the check's evidence expression names (fhir-profiles/). */
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
      const check = contraindicationCheck(condition);
      // Only the checks the data marks as contraindications (the same definition as $apply's).
      if (!expression || !check) continue;
      const code = check.code.code ?? condition.expression?.name ?? 'contraindication';
      const description = condition.expression?.description ?? code;
      if (failed.has(code)) continue;
      const verdict = evaluateCondition(expression, variables);
      if (verdict === false) {
        unchecked.delete(code);
        const evidence = contraindicationEvidence(condition, variables);
        failed.set(code, { code, description, evidence, emptyVariables: emptyVariablesOf(expression, variables) });
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
function variablesOf(expression: string): string[] {
  return [...new Set([...expression.matchAll(/%([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]))];
}

/** The searchset variables an expression reads that hold no record (e.g. "no pregnancy status on record"). */
function emptyVariablesOf(expression: string, variables: ProtocolVariables): string[] {
  return variablesOf(expression).filter(
    (name) => isBundle(variables[name]) && resourcesOf(variables[name] as Bundle).length === 0,
  );
}

function isBundle(value: unknown): value is Bundle {
  return typeof value === 'object' && value !== null && (value as Resource).resourceType === 'Bundle';
}

function resourcesOf(bundle: Bundle): Resource[] {
  return (bundle.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
}

/**
 * The person's other records (a merge, `Patient.link`) not followed because the EHR's server refused to read the
 * Patient: the check ran on this record's data alone, and the card says so. Since session 51; before, nothing did.
 */
export function mergedRecordsUnchecked(linksUnread: string | undefined): UncheckedCondition[] {
  if (!linksUnread) return [];
  return [
    {
      code: 'merged-records',
      description: `the patient's other records, if the EHR merged any: the FHIR server refused to give the Patient (${linksUnread}), so only this record's data was checked`,
    },
  ];
}
