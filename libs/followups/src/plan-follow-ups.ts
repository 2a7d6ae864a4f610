import type { CarePlan, PlanDefinition } from '@medplum/fhirtypes';
import {
  dueWindowFor,
  evaluateCondition,
  INFUSION_COMPLETED_TRIGGER,
  instantiateAction,
  triggeredActions,
  taskKey,
  uuidFromKey,
  type ActionInstance,
  type ProtocolCatalog,
  type ProtocolVariables,
} from '@kc/protocols';
import type { InfusionCompleted } from './infusion-event';

export interface FollowUpInput {
  event: InfusionCompleted;
  carePlan: CarePlan;
  plan: PlanDefinition;
  catalog: ProtocolCatalog;
  /** Completed infusions on this CarePlan, including this one: decides induction vs maintenance. */
  completedInfusionCount: number;
  /** The PlanDefinition's inputs for this patient (e.g. %bodyWeight for the next session's dose). */
  patientData: ProtocolVariables;
  now: Date;
}

export interface FollowUp extends ActionInstance {
  actionId: string;
  /** Deterministic: the same infusion always gives the same key, hence one Task however often it is delivered. */
  key: string;
  /** urn:uuid of the request in a transaction, derived from the key. */
  requestFullUrl: string;
}

/**
 * Infusion completed -> which follow-up Tasks, with which windows. Pure: the PlanDefinition's triggered
 * actions decide (their conditions see %completedInfusionCount), the infusion's end anchors the windows.
 */
export function planFollowUps(input: FollowUpInput): FollowUp[] {
  const { event, carePlan, plan, catalog, now } = input;
  const variables: ProtocolVariables = { ...input.patientData, completedInfusionCount: input.completedInfusionCount };
  const anchors = { 'infusion-session': event.performed };
  return triggeredActions(plan, INFUSION_COMPLETED_TRIGGER)
    .filter((action) =>
      (action.condition ?? [])
        .filter((c) => c.kind === 'applicability')
        .every((c) => evaluateCondition(c.expression!.expression!, variables) === true),
    )
    .map((action) => {
      const key = taskKey(carePlan.id!, event.procedureId, action.id!);
      const requestFullUrl = `urn:uuid:${uuidFromKey(`request|${key}`)}`;
      const instance = instantiateAction({
        plan,
        action,
        activity: catalog.activityDefinition(action.definitionCanonical),
        subject: { reference: `Patient/${event.patientId}` },
        carePlan: { reference: `CarePlan/${carePlan.id}` },
        key,
        window: dueWindowFor(action, anchors, event.performed),
        variables,
        now,
        trigger: { reference: `Procedure/${event.procedureId}` },
        requestReference: requestFullUrl,
      });
      return { ...instance, actionId: action.id!, key, requestFullUrl };
    });
}

/**
 * The patient-data variables (action.input ids) the follow-up rules can read: those named in their conditions and
 * in their ActivityDefinitions' dynamicValues. The worker fetches only these: after an infusion the rules need
 * e.g. %bodyWeight for the next dose, not the eligibility data $apply checked.
 */
export function followUpDataNeeds(plan: PlanDefinition, catalog: ProtocolCatalog): Set<string> {
  const expressions = triggeredActions(plan, INFUSION_COMPLETED_TRIGGER).flatMap((action) => [
    ...(action.condition ?? []).map((c) => c.expression?.expression),
    ...(action.dynamicValue ?? []).map((d) => d.expression?.expression),
    ...(catalog.activityDefinition(action.definitionCanonical)?.dynamicValue ?? []).map(
      (d) => d.expression?.expression,
    ),
  ]);
  const names = new Set<string>();
  for (const expression of expressions)
    for (const match of (expression ?? '').matchAll(/%([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(match[1]);
  return names;
}
