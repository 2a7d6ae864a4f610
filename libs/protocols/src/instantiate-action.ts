import type {
  ActivityDefinition,
  CodeableConcept,
  CommunicationRequest,
  MedicationRequest,
  Period,
  PlanDefinition,
  PlanDefinitionAction,
  Patient,
  Reference,
  Task,
} from '@medplum/fhirtypes';
import {
  BUSINESS_STATUS,
  PROTOCOL_ACTION_EXTENSION,
  PROTOCOL_WINDOW_EXTENSION,
  SERVICE_CODE_SYSTEM,
  TASK_KEY_SYSTEM,
} from './canonical';
import { applyDynamicValues } from './dynamic-values';
import { dueWindow } from './due-window';
import type { ProtocolVariables } from './fhirpath-variables';

/** The request an ActivityDefinition of kind MedicationRequest or CommunicationRequest produces. */
export type ActivityRequest = MedicationRequest | CommunicationRequest;

export interface ActionInstance {
  task: Task;
  /** The request the Task focuses on; absent for ActivityDefinitions of kind Task. */
  request?: ActivityRequest;
  /** dynamicValues that could not be computed (e.g. no body weight), for warnings. */
  unresolved: { path: string; description?: string }[];
}

export interface InstantiateActionInput {
  plan: PlanDefinition;
  action: PlanDefinitionAction;
  activity?: ActivityDefinition;
  subject: Reference<Patient>;
  carePlan: Reference;
  /** Deterministic key of this Task (see taskKey in canonical.ts). */
  key: string;
  /** The window this action is due in (from dueWindowFor). */
  window: Period;
  variables: ProtocolVariables;
  now: Date;
  /** What triggered it (the completed Procedure), for follow-ups. */
  trigger?: Reference;
  /** Reference the request by this (e.g. urn:uuid in a transaction) instead of embedding nothing. */
  requestReference?: string;
}

/**
 * The due window of an action from the windows of the actions it relates to. `anchors` maps action ids to
 * when they happen (planned window or, for a completed infusion, when it was performed); an action with no
 * relatedAction is due at `defaultAnchor`.
 */
export function dueWindowFor(
  action: PlanDefinitionAction,
  anchors: Record<string, Period>,
  defaultAnchor: Period,
): Period {
  const related = action.relatedAction?.find((r) => anchors[r.actionId]);
  if (!related) {
    if (action.relatedAction?.length)
      throw new Error(
        `action ${action.id}: none of its related actions (${action.relatedAction.map((r) => r.actionId).join(', ')}) has a time`,
      );
    return defaultAnchor;
  }
  return dueWindow(anchors[related.actionId], related);
}

/** One PlanDefinition action for one patient: the Task a clinician will review, and its request if any. */
export function instantiateAction(input: InstantiateActionInput): ActionInstance {
  const { plan, action, activity, subject, window, now } = input;
  const built = activity ? buildRequest(activity, subject, input.variables) : undefined;
  const kind = taskKind(action);
  const task: Task = {
    resourceType: 'Task',
    identifier: [{ system: TASK_KEY_SYSTEM, value: input.key }],
    status: 'requested',
    intent: 'plan',
    businessStatus: {
      coding: [
        { system: SERVICE_CODE_SYSTEM, code: BUSINESS_STATUS.awaitingApproval, display: 'Awaiting clinician approval' },
      ],
    },
    priority: 'routine',
    code: kind,
    description: action.title ?? activity?.title,
    for: subject,
    basedOn: [input.carePlan],
    focus: input.trigger ?? (built && input.requestReference ? { reference: input.requestReference } : undefined),
    instantiatesCanonical: activity?.url ? `${activity.url}|${activity.version}` : `${plan.url}|${plan.version}`,
    authoredOn: now.toISOString(),
    restriction: { period: window },
    extension: [
      { url: PROTOCOL_WINDOW_EXTENSION, valuePeriod: window },
      { url: PROTOCOL_ACTION_EXTENSION, valueString: action.id },
    ],
  };
  if (built && input.trigger && input.requestReference)
    task.input = [{ type: { text: 'request' }, valueReference: { reference: input.requestReference } }];
  return { task: stripUndefined(task), request: built?.resource, unresolved: built?.unresolved ?? [] };
}

function buildRequest(activity: ActivityDefinition, subject: Reference<Patient>, variables: ProtocolVariables) {
  const canonical = `${activity.url}|${activity.version}`;
  if (activity.kind === 'MedicationRequest') {
    const request: MedicationRequest = {
      resourceType: 'MedicationRequest',
      status: 'draft',
      intent: 'proposal',
      subject,
      medicationCodeableConcept: activity.productCodeableConcept,
      instantiatesCanonical: [canonical],
      dosageInstruction: activity.dosage,
    };
    return applyDynamicValues(request, activity.dynamicValue, variables);
  }
  if (activity.kind === 'CommunicationRequest') {
    const request: CommunicationRequest = {
      resourceType: 'CommunicationRequest',
      status: 'draft',
      subject,
      category: activity.code ? [activity.code] : undefined,
      payload: activity.description ? [{ contentString: activity.description }] : undefined,
    };
    return applyDynamicValues(stripUndefined(request), activity.dynamicValue, variables);
  }
  return undefined;
}

function taskKind(action: PlanDefinitionAction): CodeableConcept | undefined {
  return (
    action.code?.find((c) => c.coding?.some((coding) => coding.system === SERVICE_CODE_SYSTEM)) ?? action.code?.[0]
  );
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
