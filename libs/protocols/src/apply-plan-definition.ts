import type {
  CarePlan,
  DetectedIssue,
  Patient,
  OperationOutcome,
  OperationOutcomeIssue,
  Period,
  PlanDefinition,
  Reference,
  RequestGroup,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { CANONICAL_BASE, SERVICE_CODE_SYSTEM, taskKey } from './canonical';
import type { ProtocolCatalog } from './catalog';
import { shortHash, uuidFromKey } from './deterministic-id';
import { evaluateCondition, type ProtocolVariables } from './fhirpath-variables';
import { dueWindowFor, instantiateAction, type ActivityRequest } from './instantiate-action';
import { applyTimeActions, eligibilityConditions } from './triggered-actions';

export const CAREPLAN_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/careplan-key`;
/** Identifies the RequestGroup, requests and DetectedIssues of one $apply, so persisting twice writes once. */
export const APPLY_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/apply-key`;

export interface ApplyInput {
  plan: PlanDefinition;
  catalog: ProtocolCatalog;
  patientId: string;
  /** Each PlanDefinition input bound as its searchset Bundle (see patientDataQueries). */
  patientData: ProtocolVariables;
  /** When the plan starts: the anchor for actions without relatedAction. */
  startDate: Date;
  now: Date;
}

/** One resource of the result, with the urn:uuid other entries use to reference it. */
export interface AppliedEntry<T extends Resource = Resource> {
  fullUrl: string;
  resource: T;
  /** Search that finds this resource if it was already created (conditional create). */
  ifNoneExist?: string;
}

export interface ApplyResult {
  carePlan: AppliedEntry<CarePlan>;
  requestGroup: AppliedEntry<RequestGroup>;
  requests: AppliedEntry<ActivityRequest>[];
  tasks: AppliedEntry<Task>[];
  detectedIssues: AppliedEntry<DetectedIssue>[];
  /** Warnings for the clinician (missing data, doses that need setting). */
  outcome: OperationOutcome;
  /** False when a contraindication blocks activation until a clinician overrides it. */
  eligible: boolean;
}

/**
 * PlanDefinition/$apply, pure: a protocol and a patient's data in, a draft CarePlan with concrete due
 * windows out. Unlike HAPI's and Medplum's $apply it evaluates the applicability conditions, computes the
 * dynamicValues (weight-based dose) and turns relatedAction offsets into dates. Deterministic: the same input
 * gives the same keys and urn:uuids, so persisting twice creates one plan.
 */
export function applyPlanDefinition(input: ApplyInput): ApplyResult {
  const { plan, catalog, patientId, patientData, startDate, now } = input;
  const subject: Reference<Patient> = { reference: `Patient/${patientId}` };
  const planCanonical = `${plan.url}|${plan.version}`;
  const carePlanKey = shortHash(`${planCanonical}|${patientId}|${startDate.toISOString()}`);
  const carePlanUrl = `urn:uuid:${uuidFromKey(`careplan|${carePlanKey}`)}`;
  const requestGroupUrl = `urn:uuid:${uuidFromKey(`requestgroup|${carePlanKey}`)}`;
  const warnings: OperationOutcomeIssue[] = [];

  const detectedIssues: AppliedEntry<DetectedIssue>[] = [];
  for (const condition of eligibilityConditions(plan)) {
    const expression = condition.expression!;
    const verdict = evaluateCondition(expression.expression!, patientData);
    if (verdict === false) {
      const code = expression.name ?? 'contraindication';
      const issueKey = `${carePlanKey}:detectedissue:${code}`;
      detectedIssues.push({
        fullUrl: `urn:uuid:${uuidFromKey(issueKey)}`,
        ifNoneExist: keySearch(APPLY_KEY_SYSTEM, issueKey),
        resource: {
          resourceType: 'DetectedIssue',
          identifier: [{ system: APPLY_KEY_SYSTEM, value: issueKey }],
          status: 'preliminary',
          code: { coding: [{ system: SERVICE_CODE_SYSTEM, code }], text: expression.description },
          severity: 'high',
          patient: subject,
          identifiedDateTime: now.toISOString(),
          implicated: [{ reference: carePlanUrl }],
          detail: `${expression.description} Activation is blocked until a clinician overrides it.`,
        },
      });
      warnings.push({
        severity: 'warning',
        code: 'business-rule',
        details: { coding: [{ system: SERVICE_CODE_SYSTEM, code }], text: expression.description },
      });
    } else if (verdict === undefined) {
      warnings.push({
        severity: 'information',
        code: 'incomplete',
        details: { text: `Not enough data on record to check: ${expression.description}` },
      });
    }
  }

  const start: Period = { start: startDate.toISOString(), end: startDate.toISOString() };
  const anchors: Record<string, Period> = {};
  const requests: AppliedEntry<ActivityRequest>[] = [];
  const tasks: AppliedEntry<Task>[] = [];
  const groupActions: NonNullable<RequestGroup['action']> = [];
  // Actions may relate to one another in any order; resolve windows until all are placed.
  const pending = [...applyTimeActions(plan)];
  while (pending.length) {
    const index = pending.findIndex(
      (a) => !a.relatedAction?.length || a.relatedAction.some((r) => anchors[r.actionId]),
    );
    if (index < 0)
      throw new Error(
        `PlanDefinition/${plan.id}: actions ${pending.map((a) => a.id).join(', ')} relate only to actions $apply does not instantiate`,
      );
    const [action] = pending.splice(index, 1);
    const window = dueWindowFor(action, anchors, start);
    anchors[action.id!] = window;
    const key = taskKey(carePlanKey, 'apply', action.id!);
    const requestUrl = `urn:uuid:${uuidFromKey(`request|${key}`)}`;
    const instance = instantiateAction({
      plan,
      action,
      activity: catalog.activityDefinition(action.definitionCanonical),
      subject,
      carePlan: { reference: carePlanUrl },
      key,
      window,
      variables: patientData,
      now,
      requestReference: requestUrl,
    });
    const taskUrl = `urn:uuid:${uuidFromKey(`task|${key}`)}`;
    tasks.push({
      fullUrl: taskUrl,
      resource: instance.task,
      ifNoneExist: keySearch(instance.task.identifier![0].system!, key),
    });
    if (instance.request) {
      const request = { ...instance.request, identifier: [{ system: APPLY_KEY_SYSTEM, value: key }] };
      requests.push({ fullUrl: requestUrl, resource: request, ifNoneExist: keySearch(APPLY_KEY_SYSTEM, key) });
    }
    for (const missing of instance.unresolved) {
      warnings.push({
        severity: 'warning',
        code: 'incomplete',
        details: {
          coding: [{ system: SERVICE_CODE_SYSTEM, code: 'missing-body-weight' }],
          text: `${action.title}: could not compute ${missing.description ?? missing.path}; a clinician must set it (no body weight in kg on record?)`,
        },
        expression: [missing.path],
      });
    }
    groupActions.push({
      id: action.id,
      title: action.title,
      code: action.code,
      timingPeriod: window,
      resource: { reference: instance.request ? requestUrl : taskUrl },
    });
  }

  const carePlan: CarePlan = {
    resourceType: 'CarePlan',
    identifier: [{ system: CAREPLAN_KEY_SYSTEM, value: carePlanKey }],
    instantiatesCanonical: [planCanonical],
    status: 'draft',
    intent: 'plan',
    title: plan.title,
    subject,
    period: { start: startDate.toISOString() },
    created: now.toISOString(),
    activity: [
      { reference: { reference: requestGroupUrl } },
      ...tasks.map((t) => ({ reference: { reference: t.fullUrl } })),
    ],
  };
  const requestGroup: RequestGroup = {
    resourceType: 'RequestGroup',
    identifier: [{ system: APPLY_KEY_SYSTEM, value: carePlanKey }],
    status: 'draft',
    intent: 'plan',
    subject,
    instantiatesCanonical: [planCanonical],
    authoredOn: now.toISOString(),
    action: groupActions,
  };
  return {
    carePlan: { fullUrl: carePlanUrl, resource: carePlan, ifNoneExist: keySearch(CAREPLAN_KEY_SYSTEM, carePlanKey) },
    requestGroup: {
      fullUrl: requestGroupUrl,
      resource: requestGroup,
      ifNoneExist: keySearch(APPLY_KEY_SYSTEM, carePlanKey),
    },
    requests,
    tasks,
    detectedIssues,
    outcome: {
      resourceType: 'OperationOutcome',
      issue: warnings.length
        ? warnings
        : [{ severity: 'information', code: 'informational', details: { text: 'Applied without warnings' } }],
    },
    eligible: detectedIssues.length === 0,
  };
}

function keySearch(system: string, value: string): string {
  return `identifier=${encodeURIComponent(system)}|${encodeURIComponent(value)}`;
}

/** Every resource of the result in dependency order, e.g. to build a transaction Bundle. */
export function appliedEntries(result: ApplyResult): AppliedEntry[] {
  return [result.carePlan, result.requestGroup, ...result.requests, ...result.tasks, ...result.detectedIssues];
}
