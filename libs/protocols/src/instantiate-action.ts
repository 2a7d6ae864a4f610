import type {
  ActivityDefinition,
  CarePlan,
  Encounter,
  Patient,
  RequestGroup,
  CodeableConcept,
  Coding,
  Period,
  PlanDefinition,
  PlanDefinitionAction,
  Reference,
  Task,
  Timing,
} from '@medplum/fhirtypes';
import { awaitingApproval, withWindow } from '@kc/task-states';
import { notBefore, periodUnion } from './action-timing';
import { buildRequest, performerTypeOf, type ActivityRequest } from './build-request';
import {
  collectWithOf,
  COLLECT_INFORMATION,
  CPG_ACTIVITY_TYPE_SYSTEM,
  PHASE_CODES,
  PROTOCOL_ACTION_EXTENSION,
  PROTOCOL_PHASE_EXTENSION,
  PROTOCOL_WINDOW_EXTENSION,
  SERVICE_CODE_SYSTEM,
  TASK_KEY_SYSTEM,
} from './canonical';
import { dueWindow } from './due-window';
import { UTC_ZONE } from './clinic-time';
import type { ProtocolVariables } from './fhirpath-variables';
import type { LastGiven } from './rate-given';
import { stripUndefined } from './strip-undefined';

export type { ActivityRequest } from './build-request';

export interface ActionInstance {
  task: Task;
  /** The request the Task authorises (Task.focus); absent for ActivityDefinitions of kind Task. */
  request?: ActivityRequest;
  /** dynamicValues that could not be computed (e.g. no body weight), for warnings. */
  unresolved: { path: string; description?: string }[];
}

export interface InstantiateActionInput {
  plan: PlanDefinition;
  action: PlanDefinitionAction;
  activity?: ActivityDefinition;
  subject: Reference<Patient>;
  carePlan: Reference<CarePlan>;
  requestGroup?: Reference<RequestGroup>;
  /** Deterministic key of this Task (see taskKey in canonical.ts). */
  key: string;
  /** The window the protocol puts this action in (from timing[x] or relatedAction). */
  window: Period;
  timing?: Timing;
  variables: ProtocolVariables;
  now: Date;
  /** What triggered it (the completed infusion), for follow-ups: Task.reasonReference. */
  trigger?: Reference;
  /** How the Task refers to its request (a urn:uuid in a transaction). */
  requestReference: string;
  /** Who performs it: the practitioner $apply named, for an action that asks for one; a follow-up's default owner. */
  owner?: Task['owner'];
  encounter?: Reference<Encounter>;
  /** The treatment phase, for an action that carries none itself (a post-infusion check: its infusion's phase). */
  phase?: Coding;
  /** The plan's infusion last given (rate-titration): a titrated infusion is proposed at the rate it was given at. */
  lastGiven?: LastGiven;
  element: string;
}

/**
 * The due window of an action from the windows of the actions it relates to. `anchors` maps action ids to
 * when they happen (planned window or, for a completed infusion, when it was performed); an action with no
 * relatedAction whose target has a time is due at `defaultAnchor`.
 */
export function dueWindowFor(
  action: PlanDefinitionAction,
  anchors: Record<string, Period>,
  defaultAnchor: Period,
  element = 'action',
  zone: string = UTC_ZONE,
): Period {
  const index = action.relatedAction?.findIndex((r) => anchors[r.actionId]) ?? -1;
  if (index < 0) return defaultAnchor;
  const related = action.relatedAction![index];
  return dueWindow(anchors[related.actionId], related, `${element}.relatedAction[${index}]`, zone);
}

/**
 * One action for one patient: the Task a clinician reviews (awaiting approval: draft, intent plan) and the
 * proposed request it authorises. The Task never ends before it is created; the protocol's own window is kept
 * as an extension, the range a clinician may reschedule within.
 */
export function instantiateAction(input: InstantiateActionInput): ActionInstance {
  const { plan, action, activity, subject, now } = input;
  const window = notBefore(input.window, now.getTime());
  const built = buildRequest({
    action,
    activity,
    subject,
    carePlan: input.carePlan,
    window,
    timing: input.timing,
    variables: input.variables,
    lastGiven: input.lastGiven,
    element: input.element,
  });
  const performerType = performerTypeOf(action, activity);
  const phase = actionPhase(action) ?? input.phase;
  const task: Task = withWindow(
    {
      resourceType: 'Task',
      identifier: [{ system: TASK_KEY_SYSTEM, value: input.key }],
      ...awaitingApproval(),
      priority: action.priority ?? 'routine',
      code: taskKind(action) ?? activity?.code,
      description: action.title ?? activity?.title ?? action.description,
      for: subject,
      basedOn: input.requestGroup ? [input.carePlan, input.requestGroup] : [input.carePlan],
      focus: built.resource ? { reference: input.requestReference } : undefined,
      reasonReference: input.trigger,
      encounter: input.encounter,
      instantiatesCanonical: activity?.url ? `${activity.url}|${activity.version}` : `${plan.url}|${plan.version}`,
      authoredOn: now.toISOString(),
      performerType: performerType ? [performerType] : undefined,
      owner: input.owner,
      // What to ask, for any form filler (CPG cpg-questionnairetask): the Questionnaire the activity collects with.
      input: questionnaireInput(activity),
      restriction: { period: window },
      extension: [
        { url: PROTOCOL_WINDOW_EXTENSION, valuePeriod: periodUnion(input.window, window) },
        // The action's id, or where it sits when the author gave it none.
        { url: PROTOCOL_ACTION_EXTENSION, valueString: action.id ?? input.element },
        ...(phase ? [{ url: PROTOCOL_PHASE_EXTENSION, valueCoding: phase }] : []),
      ],
    },
    window,
  );
  return { task: stripUndefined(task), request: built.resource, unresolved: built.unresolved };
}

function questionnaireInput(activity: ActivityDefinition | undefined): Task['input'] {
  const questionnaire = collectWithOf(activity);
  if (!questionnaire) return undefined;
  const type = {
    coding: [{ system: CPG_ACTIVITY_TYPE_SYSTEM, code: COLLECT_INFORMATION, display: 'Collect information' }],
  };
  return [{ type, valueCanonical: questionnaire }];
}

/** The window the protocol allows for a Task (written above): where a clinician may reschedule it. */
export function protocolWindowOf(task: Task): Period | undefined {
  return task.extension?.find((e) => e.url === PROTOCOL_WINDOW_EXTENSION)?.valuePeriod;
}

/** The id of the protocol action a Task was generated from (written above). */
export function protocolActionOf(task: Task): string | undefined {
  return task.extension?.find((e) => e.url === PROTOCOL_ACTION_EXTENSION)?.valueString;
}

/** The treatment phase a Task belongs to (written above), e.g. `induction`. */
export function protocolPhaseOf(task: Task): string | undefined {
  return task.extension?.find((e) => e.url === PROTOCOL_PHASE_EXTENSION)?.valueCoding?.code;
}

/** The phase an action plans an infusion of, when the protocol says (a phase code among the action's codes). */
export function actionPhase(action: PlanDefinitionAction | undefined): Coding | undefined {
  return action?.code?.flatMap((c) => c.coding ?? []).find(isPhase);
}

function isPhase(coding: Coding): boolean {
  return coding.system === SERVICE_CODE_SYSTEM && (PHASE_CODES as readonly string[]).includes(coding.code ?? '');
}

/** The Task's kind: the action's own code from the service's code system (its phase code is not a kind). */
export function taskKind(action: PlanDefinitionAction): CodeableConcept | undefined {
  const kinds = action.code?.filter((c) => !c.coding?.some(isPhase));
  return kinds?.find((c) => c.coding?.some((coding) => coding.system === SERVICE_CODE_SYSTEM)) ?? kinds?.[0];
}
