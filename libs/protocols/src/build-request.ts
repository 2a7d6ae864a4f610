import type {
  ActivityDefinition,
  Appointment,
  CarePlan,
  Medication,
  Patient,
  CodeableConcept,
  CommunicationRequest,
  MedicationRequest,
  Period,
  PlanDefinitionAction,
  Reference,
  ServiceRequest,
  Timing,
} from '@medplum/fhirtypes';
import { applyDynamicValues } from './dynamic-values';
import type { ProtocolVariables } from './fhirpath-variables';
import { rateGiven, type LastGiven } from './rate-given';
import { RATE_PER_KG_VARIABLE, rateTitrationOf, rateToPropose, weightForTitration } from './rate-titration';
import { UnsupportedElementError } from './unsupported';
import { stripUndefined } from './strip-undefined';

/** What an ActivityDefinition (or a bare action) instantiates besides the review Task. */
export type ActivityRequest = MedicationRequest | ServiceRequest | CommunicationRequest | Appointment;

export interface RequestContext {
  action: PlanDefinitionAction;
  activity?: ActivityDefinition;
  subject: Reference<Patient>;
  carePlan: Reference<CarePlan>;
  window: Period;
  timing?: Timing;
  variables: ProtocolVariables;
  /** The plan's last infusion given (its order and administrations): a rate-titrated infusion is proposed at its rate. */
  lastGiven?: LastGiven;
  /** FHIRPath to the action, for errors. */
  element: string;
}

export interface BuiltRequest {
  resource?: ActivityRequest;
  /** dynamicValues that evaluated to nothing (e.g. no body weight), to be set by a clinician. */
  unresolved: { path: string; description?: string }[];
}

/**
 * The request an ActivityDefinition describes, in its R4 shape, proposed and not yet authorised (draft +
 * proposal): only a clinician's approval turns it into an order. ActivityDefinition kind Task instantiates no
 * request: the review Task is the activity itself. The ActivityDefinition's dynamicValues apply first, then the
 * action's, each to any path of the request.
 */
export function buildRequest(ctx: RequestContext): BuiltRequest {
  const { activity, action } = ctx;
  if (!activity || activity.kind === 'Task') return { unresolved: [] };
  const resource = baseRequest(ctx, activity);
  // A titrated infusion's dynamicValues read its rate per kg: the plan's last given (at the pump, else as ordered),
  // else the protocol's start.
  const titration = rateTitrationOf(activity);
  const last = titration && rateGiven(ctx.lastGiven, titration.unit, weightForTitration(titration, ctx.variables)?.kg);
  const rate = titration && rateToPropose(titration, last?.ratePerKg);
  const variables = rate !== undefined ? { ...ctx.variables, [RATE_PER_KG_VARIABLE]: rate } : ctx.variables;
  // A rate the pump gave last session, proposed again: the request names that administration (why this rate).
  const givenAt = last && rate === last.ratePerKg ? last.reference : undefined;
  if (givenAt && resource.resourceType === 'MedicationRequest')
    resource.supportingInformation = [...(resource.supportingInformation ?? []), givenAt];
  const fromActivity = applyDynamicValues(
    resource,
    activity.dynamicValue,
    variables,
    `ActivityDefinition/${activity.id}`,
  );
  const fromAction = applyDynamicValues(fromActivity.resource, action.dynamicValue, variables, ctx.element);
  return { resource: fromAction.resource, unresolved: [...fromActivity.unresolved, ...fromAction.unresolved] };
}

function baseRequest(ctx: RequestContext, activity: ActivityDefinition): ActivityRequest {
  const canonical = activity.url ? [`${activity.url}${activity.version ? `|${activity.version}` : ''}`] : undefined;
  const basedOn = [ctx.carePlan];
  const performerType = performerTypeOf(ctx.action, activity);
  switch (activity.kind) {
    case 'MedicationRequest':
      return stripUndefined<MedicationRequest>({
        resourceType: 'MedicationRequest',
        status: 'draft',
        intent: 'proposal',
        subject: ctx.subject,
        medicationCodeableConcept: activity.productCodeableConcept,
        medicationReference: activity.productReference as Reference<Medication> | undefined,
        instantiatesCanonical: canonical,
        basedOn,
        performerType,
        dosageInstruction: withTiming(activity.dosage, ctx.timing),
      });
    case 'ServiceRequest':
      return stripUndefined<ServiceRequest>({
        resourceType: 'ServiceRequest',
        status: 'draft',
        intent: 'proposal',
        subject: ctx.subject,
        code: activity.code,
        instantiatesCanonical: canonical,
        basedOn,
        performerType,
        bodySite: activity.bodySite,
        quantityQuantity: activity.quantity,
        occurrenceTiming: ctx.timing,
        occurrencePeriod: ctx.timing ? undefined : ctx.window,
        priority: activity.priority,
      });
    case 'CommunicationRequest':
      return stripUndefined<CommunicationRequest>({
        resourceType: 'CommunicationRequest',
        status: 'draft',
        subject: ctx.subject,
        recipient: [ctx.subject],
        basedOn,
        category: activity.code ? [activity.code] : undefined,
        priority: activity.priority,
        payload: activity.description ? [{ contentString: activity.description }] : undefined,
        occurrencePeriod: ctx.window,
      });
    case 'Appointment':
      return stripUndefined<Appointment>({
        resourceType: 'Appointment',
        status: 'proposed',
        description: activity.title ?? ctx.action.title,
        serviceType: activity.code ? [activity.code] : undefined,
        requestedPeriod: [ctx.window],
        participant: [{ actor: ctx.subject, status: 'needs-action', required: 'required' }],
      });
    default:
      throw new UnsupportedElementError(
        `ActivityDefinition kind "${activity.kind}" is not instantiated by this service (MedicationRequest, ServiceRequest, CommunicationRequest, Task, Appointment are)`,
        `ActivityDefinition/${activity.id}.kind`,
      );
  }
}

function withTiming(
  dosage: ActivityDefinition['dosage'],
  timing: Timing | undefined,
): MedicationRequest['dosageInstruction'] {
  if (!timing) return dosage;
  return (dosage?.length ? dosage : [{}]).map((d) => ({ ...d, timing: d.timing ?? timing }));
}

/** action.participant (or the ActivityDefinition's) as the role that performs it. */
export function performerTypeOf(
  action: PlanDefinitionAction,
  activity?: ActivityDefinition,
): CodeableConcept | undefined {
  return action.participant?.find((p) => p.role)?.role ?? activity?.participant?.find((p) => p.role)?.role;
}
