import type {
  Coding,
  OperationOutcomeIssue,
  PlanDefinitionAction,
  PlanDefinitionActionCondition,
  Reference,
  Resource,
} from '@medplum/fhirtypes';
import { CONTRAINDICATION_EXTENSION } from './canonical';
import { evaluateExpression, verdict, type ProtocolVariables } from './fhirpath-variables';

/** A contraindication that applies to this patient, with the resources that show it. */
export interface Contraindication {
  code: Coding;
  description?: string;
  evidence: Reference[];
  /** A clinician overrode it on this plan: the actions under it go ahead. */
  overridden: boolean;
}

export interface ConditionVerdict {
  /** Applicability met (or overridden) and no stop condition met: the action is instantiated. */
  applicable: boolean;
  contraindications: Contraindication[];
  /** Why an action was left out or waits, for the $apply OperationOutcome. */
  notes: OperationOutcomeIssue[];
  /** Start/stop conditions to copy onto the RequestGroup action for whoever performs it. */
  runtime: PlanDefinitionActionCondition[];
}

/**
 * Every condition of one action (applicability, start, stop), evaluated with the patient's data. Applicability
 * follows the CPG rule (only true applies); a failed condition marked as a contraindication check names the
 * contraindication and its evidence, unless the clinician overrode that contraindication on this plan.
 */
export function evaluateConditions(
  action: PlanDefinitionAction,
  element: string,
  variables: ProtocolVariables,
  overridden: ReadonlySet<string>,
): ConditionVerdict {
  const result: ConditionVerdict = { applicable: true, contraindications: [], notes: [], runtime: [] };
  (action.condition ?? []).forEach((condition, i) => {
    const at = `${element}.condition[${i}]`;
    const met = verdict(evaluateExpression(condition.expression, variables, `${at}.expression`));
    const what = condition.expression?.description ?? condition.expression?.expression;
    if (condition.kind === 'applicability') {
      if (met === true) return;
      const check = contraindicationCheck(condition);
      if (check) {
        const evidence = contraindicationEvidence(condition, variables, at).map(referenceTo);
        const isOverridden = overridden.has(check.code.code ?? '');
        result.contraindications.push({ code: check.code, description: what, evidence, overridden: isOverridden });
        if (isOverridden) return;
      } else {
        result.notes.push(
          note('information', 'not-applicable', `${action.title ?? action.id}: not applicable (${what})`, at),
        );
      }
      result.applicable = false;
    } else if (condition.kind === 'stop' && met === true) {
      result.applicable = false;
      result.notes.push(
        note('information', 'stopped', `${action.title ?? action.id}: stop condition already met (${what})`, at),
      );
    } else {
      if (condition.kind === 'start' && met !== true) {
        result.notes.push(
          note('information', 'waiting', `${action.title ?? action.id}: waits for its start condition (${what})`, at),
        );
      }
      result.runtime.push(condition);
    }
  });
  return result;
}

/**
 * A condition marked in the data as a contraindication check (the `contraindication` extension): its code and the
 * expression naming the records that show it. Other conditions (phase gates, plain applicability) return undefined.
 */
export function contraindicationCheck(condition: PlanDefinitionActionCondition) {
  const ext = condition.extension?.find((e) => e.url === CONTRAINDICATION_EXTENSION);
  const code = ext?.extension?.find((e) => e.url === 'code')?.valueCoding;
  if (!code) return undefined;
  return { code, evidence: ext?.extension?.find((e) => e.url === 'evidence')?.valueExpression };
}

/** The records a contraindication check's own evidence expression names (none when it declares no expression). */
export function contraindicationEvidence(
  condition: PlanDefinitionActionCondition,
  variables: ProtocolVariables,
  at = 'condition',
): Resource[] {
  const expression = contraindicationCheck(condition)?.evidence;
  if (!expression) return [];
  const found = evaluateExpression(expression, variables, `${at}.extension('contraindication').evidence`);
  return found.filter(
    (r): r is Resource => typeof r === 'object' && r !== null && 'resourceType' in r && Boolean((r as Resource).id),
  );
}

function referenceTo(resource: Resource): Reference {
  return { reference: `${resource.resourceType}/${resource.id}` };
}

function note(
  severity: OperationOutcomeIssue['severity'],
  code: string,
  text: string,
  element: string,
): OperationOutcomeIssue {
  return { severity, code: 'informational', details: { text, coding: [{ code }] }, expression: [element] };
}
