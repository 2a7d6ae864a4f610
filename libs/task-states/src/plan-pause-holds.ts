import type { CodeableConcept, Coding, Extension, Meta } from '@medplum/fhirtypes';
import type { AuthorisableRequest } from './request-authorisation';
import { TASK_STATE_SYSTEM } from './task-states';

/**
 * Why an approved order is on hold while its plan is paused (fhir-profiles' CodeSystem): in its status reason, for
 * whoever reads the order, and as a tag (R4 has no search on a request's status reason), so the sweep finds the orders
 * to release when the plan resumes: `MedicationRequest?status=on-hold&_tag=<system>|held-plan-paused`.
 */
export const PLAN_PAUSED_HOLD: Coding = {
  system: TASK_STATE_SYSTEM,
  code: 'held-plan-paused',
  display: 'Held: its care plan is on hold',
};

/** R4's standard extension for a request type without statusReason (ServiceRequest). */
const REQUEST_STATUS_REASON = 'http://hl7.org/fhir/StructureDefinition/request-statusReason';

/** The `_tag` search value of orders held for a paused plan. */
export const PLAN_PAUSED_TAG_SEARCH = `${PLAN_PAUSED_HOLD.system}|${PLAN_PAUSED_HOLD.code}`;

/**
 * An active order of a paused plan, on hold until the plan resumes: an EHR, a pharmacy or a pump integration reading
 * `status` does not give it meanwhile. Orders on hold for anything else, stopped or done are not this function's.
 */
export function pausedPlanOrder(order: AuthorisableRequest): AuthorisableRequest {
  const reason: CodeableConcept = {
    coding: [PLAN_PAUSED_HOLD],
    text: 'Held: its care plan is on hold. It is released when the plan resumes.',
  };
  const meta: Meta = {
    ...order.meta,
    tag: [...(order.meta?.tag ?? []).filter((t) => !isPauseCoding(t)), PLAN_PAUSED_HOLD],
  };
  if (order.resourceType === 'ServiceRequest')
    return {
      ...order,
      meta,
      status: 'on-hold',
      extension: [...(order.extension ?? []), { url: REQUEST_STATUS_REASON, valueCodeableConcept: reason }],
    };
  return { ...order, meta, status: 'on-hold', statusReason: reason };
}

/**
 * Held by this service because its plan was paused (not a hold somebody else placed, nor a contraindication's): by its
 * status reason, not the tag, which HAPI keeps on an update that drops it (its tags are removed by `$meta-delete`).
 */
export function isHeldForPausedPlan(order: AuthorisableRequest): boolean {
  const reason =
    order.resourceType === 'ServiceRequest'
      ? order.extension?.find((e) => e.url === REQUEST_STATUS_REASON)?.valueCodeableConcept
      : order.statusReason;
  return order.status === 'on-hold' && Boolean(reason?.coding?.some(isPauseCoding));
}

/** An order held for its paused plan, active again (its hold reason and tag removed). */
export function resumedPlanOrder(order: AuthorisableRequest): AuthorisableRequest {
  const tag = (order.meta?.tag ?? []).filter((t) => !isPauseCoding(t));
  const meta = { ...order.meta, tag: tag.length ? tag : undefined };
  if (order.resourceType === 'ServiceRequest') {
    const extension = (order.extension ?? []).filter((e) => !isPauseReason(e));
    return { ...order, meta, status: 'active', extension: extension.length ? extension : undefined };
  }
  const { statusReason: _held, ...rest } = order;
  return { ...rest, meta, status: 'active' };
}

function isPauseReason(extension: Extension): boolean {
  return (
    extension.url === REQUEST_STATUS_REASON && Boolean(extension.valueCodeableConcept?.coding?.some(isPauseCoding))
  );
}

function isPauseCoding(coding: Coding): boolean {
  return coding.system === PLAN_PAUSED_HOLD.system && coding.code === PLAN_PAUSED_HOLD.code;
}
