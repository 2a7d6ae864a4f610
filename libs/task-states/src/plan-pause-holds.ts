import type { CodeableConcept, Coding, Extension } from '@medplum/fhirtypes';
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
export function pausedPlanOrder(order: AuthorisableRequest, plan?: string): AuthorisableRequest {
  const reason: CodeableConcept = {
    coding: [PLAN_PAUSED_HOLD],
    text: 'Held: its care plan is on hold. It is released when the plan resumes.',
  };
  const tag = [...(order.meta?.tag ?? []).filter((t) => !sameCoding(t, PLAN_PAUSED_HOLD)), PLAN_PAUSED_HOLD];
  const held = { ...onHoldWith(order, reason), meta: { ...order.meta, tag } };
  // An order of the EHR's (a session approved on it, or a replacement) may name no plan: the hold names the one it is
  // for, so that the plan's resumption finds and releases it.
  if (!plan || order.basedOn?.some((b) => b.reference === plan)) return held;
  return {
    ...held,
    extension: [
      ...withoutPlanHeldFor(held.extension),
      { url: HELD_FOR_PLAN_EXTENSION, valueReference: { reference: plan } },
    ],
  };
}

/**
 * The extension a hold writes on an order naming no plan: the paused plan it is held for
 * (fhir-profiles/StructureDefinition-held-for-plan.json).
 */
export const HELD_FOR_PLAN_EXTENSION = 'https://ketamine-careplans.example/fhir/StructureDefinition/held-for-plan';

/** The plan an order is held for when the order itself names none (pausedPlanOrder), `CarePlan/<id>`. */
export function planHeldFor(order: AuthorisableRequest): string | undefined {
  return order.extension?.find((e) => e.url === HELD_FOR_PLAN_EXTENSION)?.valueReference?.reference;
}

function withoutPlanHeldFor(extension: Extension[] | undefined): Extension[] {
  return (extension ?? []).filter((e) => e.url !== HELD_FOR_PLAN_EXTENSION);
}

/**
 * Held by this service because its plan was paused (not a hold somebody else placed, nor a contraindication's): by its
 * status reason, not the tag, which HAPI keeps on an update that drops it (its tags are removed by `$meta-delete`).
 */
export function isHeldForPausedPlan(order: AuthorisableRequest): boolean {
  return isHeldFor(order, PLAN_PAUSED_HOLD);
}

/** An order held for its paused plan, active again (its hold reason, tag and plan held for removed). */
export function resumedPlanOrder(order: AuthorisableRequest): AuthorisableRequest {
  const tag = (order.meta?.tag ?? []).filter((t) => !sameCoding(t, PLAN_PAUSED_HOLD));
  const resumed = activeAgain(order, PLAN_PAUSED_HOLD);
  const extension = withoutPlanHeldFor(resumed.extension);
  return {
    ...resumed,
    extension: extension.length ? extension : undefined,
    meta: { ...order.meta, tag: tag.length ? tag : undefined },
  };
}
