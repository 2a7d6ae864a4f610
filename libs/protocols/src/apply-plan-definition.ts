import type {
  Bundle,
  CarePlan,
  CareTeam,
  CodeableConcept,
  DetectedIssue,
  Encounter,
  Organization,
  Practitioner,
  Goal,
  OperationOutcome,
  OperationOutcomeIssue,
  Patient,
  Period,
  PlanDefinition,
  PlanDefinitionAction,
  Reference,
  RequestGroup,
  RequestGroupAction,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { windowFromTiming } from './action-timing';
import { leaves, selectActions, type DefinitionResolver, type SelectedAction } from './action-tree';
import type { Contraindication } from './applicability';
import { performerTypeOf, type ActivityRequest } from './build-request';
import { careTeamOwner, onDutyAt } from './care-team-owner';
import { addDuration, iso } from './calendar';
import { clinicDay, UTC_ZONE } from './clinic-time';
import { isTriggeredBy } from './triggered-actions';
import {
  CANONICAL_BASE,
  canonicalOf,
  INFUSION_COMPLETED_TRIGGER,
  TASK_APPROVED_TRIGGER,
  SERVICE_CODE_SYSTEM,
  taskKey,
} from './canonical';
import { shortHash, uuidFromKey } from './deterministic-id';
import type { ProtocolVariables } from './fhirpath-variables';
import { dueWindowFor, instantiateAction } from './instantiate-action';
import { stripUndefined } from './strip-undefined';

export const CAREPLAN_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/careplan-key`;
/** Identifies the RequestGroup, requests, Goals and DetectedIssues of one $apply, so persisting twice writes once. */
export const APPLY_KEY_SYSTEM = `${CANONICAL_BASE}/NamingSystem/apply-key`;

/** Who and where the plan is applied for: the R4 $apply in-parameters beyond subject. */
export interface ApplyContext {
  encounter?: Reference<Encounter>;
  practitioner?: Reference<Practitioner>;
  organization?: Reference<Organization>;
  setting?: CodeableConcept;
}

export interface ApplyInput {
  plan: PlanDefinition;
  /** ActivityDefinitions and nested PlanDefinitions by canonical (the catalog, or what the FHIR server holds). */
  definitions: DefinitionResolver;
  patient: Patient & { id: string };
  /** Each PlanDefinition input bound as its searchset Bundle (see patientDataQueries). */
  patientData: ProtocolVariables;
  /** When the plan starts: the anchor for actions without timing or relatedAction. */
  startDate: Date;
  now: Date;
  /** The clinic's time zone: its calendar days, weeks and months (clinic-time). UTC unless given. */
  zone?: string;
  context?: ApplyContext;
  /** Contraindication codes a clinician overrode on this plan (DetectedIssue.mitigation): their actions go ahead. */
  overridden?: ReadonlySet<string>;
  /**
   * The key of a plan applied again (after an override): what is proposed goes under that plan, whatever its start
   * says now. Without it the key comes from the protocol, the patient and the start date, so a plan whose start the
   * EHR moved was written again as a second plan, its Tasks under it (since session 50; clinic day seeds 3196, 3201,
   * 3203: the first plan left with nothing proposed).
   */
  carePlanKey?: string;
  /**
   * The patient's care teams (FOLLOW_UP_OWNER=care-team): a Task no practitioner was named for is the member's in the
   * role its protocol names as performer (careTeamOwner).
   */
  careTeams?: CareTeam[];
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
  goals: AppliedEntry<Goal>[];
  requests: AppliedEntry<ActivityRequest>[];
  tasks: AppliedEntry<Task>[];
  detectedIssues: AppliedEntry<DetectedIssue>[];
  /** Why actions were left out, data that is missing, doses a clinician must set. */
  outcome: OperationOutcome;
  /** False while a contraindication applies that no clinician has overridden. */
  eligible: boolean;
}

/**
 * PlanDefinition/$apply, pure: a protocol and a patient's data in, a draft CarePlan with concrete due windows
 * out. Every condition at every level is evaluated; an action that is not applicable yields nothing, and a
 * contraindication yields only a DetectedIssue with its evidence. dynamicValues are computed, timing[x] and
 * relatedAction offsets become dates. Deterministic: the same input gives the same keys and urn:uuids, so
 * persisting twice creates one plan.
 */
export function applyPlanDefinition(input: ApplyInput): ApplyResult {
  const { plan, patient, startDate, now } = input;
  const ids = applyIdentity(plan, patient, startDate, input.carePlanKey);
  const variables = bindVariables(input);
  const selection = selectActions(plan, {
    variables,
    overridden: input.overridden ?? new Set(),
    resolver: input.definitions,
    // The service's own rules run on their events (an infusion completed, a Task approved), never at $apply. Other
    // triggers are instantiated as HAPI's $apply does (it does not evaluate triggers), with a note saying so.
    filter: (action) => (isServiceRule(action) ? 'skip' : 'instantiate'),
  });
  const blocking = selection.contraindications.filter((c) => !c.overridden);
  const detectedIssues = blocking.map((c) => detectedIssue(c, ids, now));
  const zone = input.zone ?? UTC_ZONE;
  const start: Period = {
    start: startDate.toISOString(),
    end: iso(addDuration(startDate.getTime(), { value: 1, code: 'd' }, 'start', 1, zone)),
  };
  const windows = placeWindows(leaves(selection.roots), start, patient.birthDate, zone);
  const instantiated = instantiateLeaves({ input, ids, variables, leaves: leaves(selection.roots), windows });
  const goals = (plan.goal ?? []).map((goal, i) => goalEntry(goal, i, ids, startDate, zone));
  const warnings: OperationOutcomeIssue[] = [
    // Most recent contraindication first, as they were always listed.
    ...blocking.map(contraindicationWarning).reverse(),
    ...missingData(plan, input.patientData),
    ...selection.notes,
    ...triggerNotes(selection.roots),
    ...instantiated.warnings,
  ];
  const requestGroup = requestGroupResource({
    input,
    ids,
    action: selection.roots.map((a) => requestGroupAction(a, windows, instantiated.resourceOf)),
  });
  return {
    carePlan: {
      fullUrl: ids.urls.carePlan,
      resource: carePlanResource({ input, ids, goals, tasks: instantiated.tasks }),
      ifNoneExist: keySearch(CAREPLAN_KEY_SYSTEM, ids.carePlanKey),
    },
    requestGroup: {
      fullUrl: ids.urls.requestGroup,
      resource: requestGroup,
      ifNoneExist: keySearch(APPLY_KEY_SYSTEM, ids.carePlanKey),
    },
    goals,
    requests: instantiated.requests,
    tasks: instantiated.tasks,
    detectedIssues,
    outcome: applyOutcome(warnings),
    eligible: blocking.length === 0,
  };
}

/** What names one $apply: the patient reference, the plan's canonical, the deterministic key and urn:uuids. */
interface ApplyIdentity {
  subject: Reference<Patient>;
  planCanonical: string;
  carePlanKey: string;
  urls: { carePlan: string; requestGroup: string };
}

function applyIdentity(
  plan: PlanDefinition,
  patient: Patient & { id: string },
  startDate: Date,
  key?: string,
): ApplyIdentity {
  const planCanonical = canonicalOf(plan) ?? `PlanDefinition/${plan.id}`;
  const carePlanKey = key ?? shortHash(`${planCanonical}|${patient.id}|${startDate.toISOString()}`);
  return {
    subject: { reference: `Patient/${patient.id}` },
    planCanonical,
    carePlanKey,
    urls: {
      carePlan: `urn:uuid:${uuidFromKey(`careplan|${carePlanKey}`)}`,
      requestGroup: `urn:uuid:${uuidFromKey(`requestgroup|${carePlanKey}`)}`,
    },
  };
}

function contraindicationWarning(c: Contraindication): OperationOutcomeIssue {
  return {
    severity: 'warning',
    code: 'business-rule',
    details: {
      coding: [c.code],
      text: `Contraindication: ${c.description ?? c.code.display}. Its actions were not instantiated; a clinician may override it with a reason.`,
    },
  };
}

/**
 * Each selected leaf action as a Task (and the request it authorises, when the action defines one), keyed so a
 * second $apply finds them; plus a warning for every dose that could not be computed.
 */
function instantiateLeaves(args: {
  input: ApplyInput;
  ids: ApplyIdentity;
  variables: ProtocolVariables;
  leaves: SelectedAction[];
  windows: ReturnType<typeof placeWindows>;
}): {
  requests: AppliedEntry<ActivityRequest>[];
  tasks: AppliedEntry<Task>[];
  resourceOf: Map<SelectedAction, string>;
  warnings: OperationOutcomeIssue[];
} {
  const { input, ids, variables, windows } = args;
  const requests: AppliedEntry<ActivityRequest>[] = [];
  const tasks: AppliedEntry<Task>[] = [];
  const resourceOf = new Map<SelectedAction, string>();
  const warnings: OperationOutcomeIssue[] = [];
  for (const leaf of args.leaves) {
    const key = taskKey(ids.carePlanKey, 'apply', leaf.action.id ?? shortHash(leaf.element));
    const requestUrl = `urn:uuid:${uuidFromKey(`request|${key}`)}`;
    const taskUrl = `urn:uuid:${uuidFromKey(`task|${key}`)}`;
    const placed = windows.get(leaf)!;
    const instance = instantiateAction({
      plan: input.plan,
      action: leaf.action,
      activity: leaf.activity,
      subject: ids.subject,
      carePlan: { reference: ids.urls.carePlan },
      requestGroup: { reference: ids.urls.requestGroup },
      key,
      window: placed.window,
      timing: placed.timing,
      variables,
      now: input.now,
      requestReference: requestUrl,
      owner: wantsPractitioner(leaf)
        ? input.context?.practitioner
        : input.careTeams &&
          careTeamOwner(
            performerTypeOf(leaf.action, leaf.activity),
            input.careTeams,
            {},
            onDutyAt(placed.window, input.now),
          ),
      encounter: input.context?.encounter,
      element: leaf.element,
    });
    tasks.push({
      fullUrl: taskUrl,
      resource: instance.task,
      ifNoneExist: keySearch(instance.task.identifier![0].system!, key),
    });
    if (instance.request) {
      const request = {
        ...instance.request,
        identifier: [{ system: APPLY_KEY_SYSTEM, value: key }],
      } as ActivityRequest;
      requests.push({ fullUrl: requestUrl, resource: request, ifNoneExist: keySearch(APPLY_KEY_SYSTEM, key) });
    }
    resourceOf.set(leaf, instance.request ? requestUrl : taskUrl);
    warnings.push(...instance.unresolved.map((missing) => unresolvedDoseWarning(leaf, missing)));
  }
  return { requests, tasks, resourceOf, warnings };
}

function unresolvedDoseWarning(
  leaf: SelectedAction,
  missing: { path: string; description?: string },
): OperationOutcomeIssue {
  return {
    severity: 'warning',
    code: 'incomplete',
    details: {
      coding: [{ system: SERVICE_CODE_SYSTEM, code: 'missing-body-weight' }],
      text: `${leaf.action.title ?? leaf.action.id}: could not compute ${missing.description ?? missing.path}; a clinician must set it (no body weight in kg on record?)`,
    },
    expression: [missing.path],
  };
}

/** The draft CarePlan: each activity once, the Task a clinician decides on (which focuses the request it authorises). */
function carePlanResource(args: {
  input: ApplyInput;
  ids: ApplyIdentity;
  goals: AppliedEntry<Goal>[];
  tasks: AppliedEntry<Task>[];
}): CarePlan {
  const { input, ids, goals, tasks } = args;
  return stripUndefined({
    resourceType: 'CarePlan',
    identifier: [{ system: CAREPLAN_KEY_SYSTEM, value: ids.carePlanKey }],
    instantiatesCanonical: [ids.planCanonical],
    status: 'draft',
    intent: 'plan',
    title: input.plan.title,
    description: input.plan.description,
    subject: ids.subject,
    encounter: input.context?.encounter,
    author: input.context?.practitioner ?? input.context?.organization,
    period: { start: input.startDate.toISOString() },
    created: input.now.toISOString(),
    goal: goals.length ? goals.map((g) => ({ reference: g.fullUrl })) : undefined,
    activity: tasks.length ? tasks.map((t) => ({ reference: { reference: t.fullUrl } })) : undefined,
  });
}

function requestGroupResource(args: {
  input: ApplyInput;
  ids: ApplyIdentity;
  action: RequestGroupAction[];
}): RequestGroup {
  const { input, ids, action } = args;
  return stripUndefined({
    resourceType: 'RequestGroup',
    identifier: [{ system: APPLY_KEY_SYSTEM, value: ids.carePlanKey }],
    status: 'draft',
    intent: 'proposal',
    subject: ids.subject,
    encounter: input.context?.encounter,
    author: input.context?.practitioner,
    instantiatesCanonical: [ids.planCanonical],
    authoredOn: input.now.toISOString(),
    action,
  });
}

function applyOutcome(warnings: OperationOutcomeIssue[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: warnings.length
      ? warnings
      : [{ severity: 'information', code: 'informational', details: { text: 'Applied without warnings' } }],
  };
}

function bindVariables(input: ApplyInput): ProtocolVariables {
  const variables: ProtocolVariables = {
    ...input.patientData,
    subject: input.patient,
    patient: input.patient,
    context: input.patient,
    resource: input.plan,
  };
  for (const name of ['encounter', 'practitioner', 'organization'] as const) {
    const ref = input.context?.[name];
    if (ref?.reference) variables[name] = ref.reference;
  }
  // The care setting the caller named (R4 $apply `setting`), for expressions that depend on it.
  if (input.context?.setting) variables.setting = input.context.setting as ProtocolVariables[string];
  return variables;
}

/** Windows for every instantiated action: its own timing[x], else relative to the actions it relates to, else the plan's start. */
function placeWindows(selected: SelectedAction[], start: Period, birthDate: string | undefined, zone: string) {
  const placed = new Map<
    SelectedAction,
    {
      window: Period;
      timing?: ReturnType<typeof windowFromTiming> extends infer T
        ? T extends { timing?: infer U }
          ? U
          : never
        : never;
    }
  >();
  const anchors: Record<string, Period> = {};
  const ids = new Set(selected.map((s) => s.action.id));
  const pending = [...selected];
  while (pending.length) {
    // Actions may relate to one another in any order; place those whose anchor is known first.
    let index = pending.findIndex(
      (s) => !s.action.relatedAction?.some((r) => ids.has(r.actionId) && !anchors[r.actionId]),
    );
    if (index < 0) index = 0; // a cycle: the first one falls back to the plan's start
    const [s] = pending.splice(index, 1);
    const own = windowFromTiming(s.action, Date.parse(start.start!), birthDate, s.element, zone);
    const window = own?.window ?? dueWindowFor(s.action, anchors, start, s.element, zone);
    placed.set(s, { window, timing: own?.timing });
    if (s.action.id) anchors[s.action.id] = window;
  }
  return placed;
}

function requestGroupAction(
  selected: SelectedAction,
  windows: Map<SelectedAction, { window: Period }>,
  resourceOf: Map<SelectedAction, string>,
): RequestGroupAction {
  const { action } = selected;
  return stripUndefined<RequestGroupAction>({
    id: action.id,
    prefix: action.prefix,
    title: action.title,
    description: action.description,
    textEquivalent: action.textEquivalent,
    priority: action.priority,
    code: action.code,
    documentation: action.documentation,
    condition: selected.runtime.length
      ? selected.runtime.map((c) => ({ kind: c.kind, expression: c.expression }))
      : undefined,
    relatedAction: action.relatedAction?.map((r) =>
      stripUndefined({
        actionId: r.actionId,
        relationship: r.relationship,
        offsetDuration: r.offsetDuration,
        offsetRange: r.offsetRange,
      }),
    ),
    timingPeriod: windows.get(selected)?.window,
    type: action.type,
    groupingBehavior: action.groupingBehavior,
    selectionBehavior: action.selectionBehavior,
    requiredBehavior: action.requiredBehavior,
    precheckBehavior: action.precheckBehavior,
    cardinalityBehavior: action.cardinalityBehavior,
    resource: resourceOf.has(selected) ? { reference: resourceOf.get(selected) } : undefined,
    action: selected.children.length
      ? selected.children.map((c) => requestGroupAction(c, windows, resourceOf))
      : undefined,
  });
}

function isServiceRule(action: PlanDefinitionAction): boolean {
  return isTriggeredBy(action, INFUSION_COMPLETED_TRIGGER) || isTriggeredBy(action, TASK_APPROVED_TRIGGER);
}

function triggerNotes(roots: SelectedAction[]): OperationOutcomeIssue[] {
  return leaves(roots)
    .filter((s) => s.action.trigger?.length)
    .map((s) => ({
      severity: 'information' as const,
      code: 'informational' as const,
      details: {
        text: `${s.action.title ?? s.action.id}: its trigger (${s.action.trigger!.map((t) => t.name ?? t.type).join(', ')}) is not evaluated here; proposed like any other action`,
      },
      expression: [`${s.element}.trigger`],
    }));
}

function wantsPractitioner(selected: SelectedAction): boolean {
  return Boolean(selected.action.participant?.some((p) => p.type === 'practitioner'));
}

/** The key $apply gave the plan (its careplan-key identifier); a plan written otherwise is keyed by its id. */
export function carePlanKeyOf(carePlan: CarePlan): string {
  return (
    carePlan.identifier?.find((i) => i.system === CAREPLAN_KEY_SYSTEM)?.value ?? shortHash(`CarePlan/${carePlan.id}`)
  );
}

/**
 * The plan's one DetectedIssue for a contraindication, whoever finds it ($apply, a follow-up, an approval): keyed by
 * the plan's key and the code, so it is recorded once (a conditional create) and overridden once.
 */
export function contraindicationIssue(
  c: Contraindication,
  found: { carePlanKey: string; carePlan: Reference; patient: Reference<Patient>; now: Date; detail: string },
): { key: string; ifNoneExist: string; resource: DetectedIssue } {
  const key = `${found.carePlanKey}:detectedissue:${c.code.code}`;
  const resource: DetectedIssue = {
    resourceType: 'DetectedIssue',
    identifier: [{ system: APPLY_KEY_SYSTEM, value: key }],
    status: 'preliminary',
    code: { coding: [c.code], text: c.description ?? c.code.display },
    severity: 'high',
    patient: found.patient,
    identifiedDateTime: found.now.toISOString(),
    implicated: [found.carePlan],
    detail: `${c.description ?? c.code.display} ${found.detail}`,
  };
  if (c.evidence.length) resource.evidence = [{ detail: c.evidence }];
  return { key, ifNoneExist: keySearch(APPLY_KEY_SYSTEM, key), resource };
}

function detectedIssue(c: Contraindication, ids: ApplyIdentity, now: Date): AppliedEntry<DetectedIssue> {
  const issue = contraindicationIssue(c, {
    carePlanKey: ids.carePlanKey,
    carePlan: { reference: ids.urls.carePlan },
    patient: ids.subject,
    now,
    detail: 'No order or task is written for the actions it affects until a clinician overrides it with a reason.',
  });
  return { fullUrl: `urn:uuid:${uuidFromKey(issue.key)}`, ifNoneExist: issue.ifNoneExist, resource: issue.resource };
}

function goalEntry(
  goal: NonNullable<PlanDefinition['goal']>[number],
  i: number,
  ids: ApplyIdentity,
  startDate: Date,
  zone: string,
): AppliedEntry<Goal> {
  const key = `${ids.carePlanKey}:goal:${goal.id ?? i}`;
  return {
    fullUrl: `urn:uuid:${uuidFromKey(key)}`,
    ifNoneExist: keySearch(APPLY_KEY_SYSTEM, key),
    resource: stripUndefined<Goal>({
      resourceType: 'Goal',
      identifier: [{ system: APPLY_KEY_SYSTEM, value: key }],
      lifecycleStatus: 'proposed',
      category: goal.category ? [goal.category] : undefined,
      priority: goal.priority,
      description: goal.description,
      subject: ids.subject,
      startDate: clinicDay(startDate.getTime(), zone),
      addresses: undefined,
      target: goal.target?.map((t) =>
        stripUndefined({
          measure: t.measure,
          detailQuantity: t.detailQuantity,
          detailRange: t.detailRange,
          detailCodeableConcept: t.detailCodeableConcept,
          dueDate: t.due
            ? clinicDay(addDuration(startDate.getTime(), t.due, `PlanDefinition.goal[${i}].target.due`, 1, zone), zone)
            : undefined,
        }),
      ),
    }),
  };
}

/** Inputs that found nothing for this patient: the clinician should know what the checks could not see. */
function missingData(plan: PlanDefinition, data: ProtocolVariables): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  const visit = (actions: PlanDefinition['action']) => {
    for (const action of actions ?? []) {
      for (const input of action.input ?? []) {
        const bound = input.id ? (data[input.id] as Bundle | undefined) : undefined;
        if (bound?.resourceType === 'Bundle' && !bound.entry?.length) {
          const what = input.codeFilter?.[0]?.code?.[0]?.display ?? input.id;
          issues.push({
            severity: 'information',
            code: 'incomplete',
            details: { text: `No ${what} on record for this patient` },
            expression: [`%${input.id}`],
          });
        }
      }
      visit(action.action);
    }
  };
  visit(plan.action);
  return issues;
}

export function keySearch(system: string, value: string): string {
  return `identifier=${encodeURIComponent(system)}|${encodeURIComponent(value)}`;
}

/** Every resource of the result in dependency order, e.g. to build a transaction Bundle. */
export function appliedEntries(result: ApplyResult): AppliedEntry[] {
  return [
    result.carePlan,
    result.requestGroup,
    ...result.goals,
    ...result.requests,
    ...result.tasks,
    ...result.detectedIssues,
  ];
}
