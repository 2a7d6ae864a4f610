import type { CodeableConcept, Coding } from '@medplum/fhirtypes';
import { activeAgain, isHeldFor, onHoldWith, sameCoding } from './order-status-reason';
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
  const tag = [...(order.meta?.tag ?? []).filter((t) => !sameCoding(t, PLAN_PAUSED_HOLD)), PLAN_PAUSED_HOLD];
  return { ...onHoldWith(order, reason), meta: { ...order.meta, tag } };
}

/**
 * Held by this service because its plan was paused (not a hold somebody else placed, nor a contraindication's): by its
 * status reason, not the tag, which HAPI keeps on an update that drops it (its tags are removed by `$meta-delete`).
 */
export function isHeldForPausedPlan(order: AuthorisableRequest): boolean {
  return isHeldFor(order, PLAN_PAUSED_HOLD);
}

/** An order held for its paused plan, active again (its hold reason and tag removed). */
export function resumedPlanOrder(order: AuthorisableRequest): AuthorisableRequest {
  const tag = (order.meta?.tag ?? []).filter((t) => !sameCoding(t, PLAN_PAUSED_HOLD));
  return { ...activeAgain(order, PLAN_PAUSED_HOLD), meta: { ...order.meta, tag: tag.length ? tag : undefined } };
}
