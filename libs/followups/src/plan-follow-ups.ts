import type {
  CarePlan,
  CareTeam,
  Coding,
  DetectedIssue,
  Patient,
  Period,
  PlanDefinition,
  PlanDefinitionAction,
  Task,
} from '@medplum/fhirtypes';
import {
  type LastGiven,
  carePlanKeyOf,
  contraindicationIssue,
  isTriggeredBy,
  INFUSION_COMPLETED_TRIGGER,
  instantiateAction,
  dueWindowFor,
  careTeamOwner,
  clinicDay,
  onDutyAt,
  leaves,
  performerTypeOf,
  selectActions,
  taskKey,
  uuidFromKey,
  type ActionInstance,
  type DefinitionResolver,
  type ProtocolVariables,
} from '@kc/protocols';
import { dueAfterPlanEnd } from './care-plan-state';
import { takesChecksOnly } from './checks-outlive-their-plan';
import { isRecordedDeceased } from './deceased-patients';
import type { InfusionCompleted } from './infusion-event';

export interface FollowUpInput {
  event: InfusionCompleted;
  carePlan: CarePlan;
  plan: PlanDefinition;
  catalog: DefinitionResolver;
  /** Completed infusions on this CarePlan, including this one: decides induction vs maintenance. */
  completedInfusionCount: number;
  /** The PlanDefinition's inputs for this patient (weight for the dose, the data the contraindication checks read). */
  patientData: ProtocolVariables;
  patient?: Patient;
  /** Contraindication codes a clinician overrode on this CarePlan. */
  overridden?: ReadonlySet<string>;
  /** This infusion's phase (infusionPhase): the phase of the follow-ups whose action names none (the check). */
  infusionPhase?: Coding;
  /**
   * What this infusion gave: the order of the Task it fulfils and its administrations. The next sessions are proposed
   * at the rate per kg last given at the pump, else the order's.
   */
  given?: LastGiven;
  /** Whose the follow-up Tasks are when written (FOLLOW_UP_OWNER=infusion: the infusion's Task owner); none: nobody's. */
  owner?: Task['owner'];
  /**
   * The patient's care teams (FOLLOW_UP_OWNER=care-team): each follow-up is the member's in the role its protocol
   * names as performer (careTeamOwner); nobody's when no member has it.
   */
  careTeams?: CareTeam[];
  now: Date;
  /** The clinic's time zone: the calendar days and weeks the windows count in (clinic-time). UTC unless given. */
  zone?: string;
}

export interface FollowUp extends ActionInstance {
  actionId: string;
  /** Deterministic: the same infusion always gives the same key, hence one Task however often it is delivered. */
  key: string;
  /** urn:uuid of the request in a transaction, derived from the key. */
  requestFullUrl: string;
}

export interface FollowUpPlan {
  followUps: FollowUp[];
  /** The infusion sessions not proposed because they would begin after the plan's end (their action ids). */
  afterPlanEnd: string[];
  /** Contraindications found now and not overridden: a DetectedIssue each, and no infusion under them. */
  detectedIssues: { resource: DetectedIssue; ifNoneExist: string }[];
}

/**
 * Infusion completed -> which follow-up Tasks, with which windows. Pure: the PlanDefinition's triggered actions
 * decide, with every condition above them evaluated on today's data (a pregnancy recorded since enrolment stops
 * the next session, not the post-infusion check); the infusion's end anchors the windows.
 */
export function planFollowUps(input: FollowUpInput): FollowUpPlan {
  const { event, carePlan, plan, catalog, now } = input;
  const patient = input.patient ?? { resourceType: 'Patient', id: event.patientId };
  const variables: ProtocolVariables = {
    ...input.patientData,
    subject: patient,
    patient,
    context: patient,
    resource: plan,
    completedInfusionCount: input.completedInfusionCount,
  };
  const selection = selectActions(plan, {
    variables,
    overridden: input.overridden ?? new Set(),
    resolver: catalog,
    filter: (action) => (isTriggeredBy(action, INFUSION_COMPLETED_TRIGGER) ? 'instantiate' : 'skip'),
  });
  const instances = leaves(selection.roots).map((selected) => {
    const action = selected.action;
    const key = taskKey(carePlan.id!, event.procedureId, action.id!);
    const requestFullUrl = `urn:uuid:${uuidFromKey(`request|${key}`)}`;
    const window = followUpWindow(action, event.performed, input.zone, selected.element);
    const instance = instantiateAction({
      plan,
      action,
      activity: selected.activity,
      subject: { reference: `Patient/${event.patientId}` },
      carePlan: { reference: `CarePlan/${carePlan.id}` },
      key,
      window,
      variables,
      now,
      trigger: { reference: `Procedure/${event.procedureId}` },
      requestReference: requestFullUrl,
      phase: input.infusionPhase,
      lastGiven: input.given,
      owner:
        input.owner ??
        (input.careTeams &&
          careTeamOwner(performerTypeOf(action, selected.activity), input.careTeams, carePlan, onDutyAt(window, now))),
      element: selected.element,
    });
    return { ...instance, actionId: action.id!, key, requestFullUrl };
  });
  // No infusion after the plan's end (dueAfterPlanEnd); its last infusion's check still.
  const afterEnd = (f: FollowUp) =>
    f.request?.resourceType === 'MedicationRequest' &&
    dueAfterPlanEnd(carePlan, f.task.restriction?.period, input.zone);
  // A plan closed in the EHR: the infusion given under it has its check, nothing that orders (takesChecksOnly); nothing
  // at all for a patient recorded as deceased (their death withdrew what such a plan kept: DeceasedPatients).
  const checksOnly = takesChecksOnly(carePlan);
  const nothing = checksOnly && isRecordedDeceased(patient);
  const followUps = instances.filter((f) => !nothing && !afterEnd(f) && !(checksOnly && f.request));
  const afterPlanEnd = instances.filter(afterEnd).map((f) => f.actionId);
  const carePlanKey = carePlanKeyOf(carePlan);
  const detectedIssues = (checksOnly ? [] : selection.contraindications)
    .filter((c) => !c.overridden)
    .map((c) =>
      contraindicationIssue(c, {
        carePlanKey,
        carePlan: { reference: `CarePlan/${carePlan.id}` },
        patient: { reference: `Patient/${event.patientId}` },
        now,
        detail: `Found after the infusion of ${infusionDay(event, input.zone)}: no further infusion is proposed until a clinician overrides it with a reason.`,
      }),
    );
  return { followUps, detectedIssues, afterPlanEnd };
}

/**
 * The window the protocol gives a follow-up of an infusion performed then: its action's relatedAction offset from the
 * infusion (`infusion-session`), else the infusion's own time. Before a new Task's "not before it is written"
 * (instantiateAction); a re-timed infusion's follow-ups are counted again from it (retimed-infusions.ts).
 */
export function followUpWindow(
  action: PlanDefinitionAction,
  performed: Period,
  zone?: string,
  element = 'action',
): Period {
  return dueWindowFor(action, { 'infusion-session': performed }, performed, element, zone);
}

/** The infusion's day, as a clinician knows it (an id would mean nothing on the page or in an EHR's view). */
function infusionDay(event: InfusionCompleted, zone?: string): string {
  return clinicDay(event.performed.end ?? event.performed.start, zone) ?? 'an unrecorded day';
}
