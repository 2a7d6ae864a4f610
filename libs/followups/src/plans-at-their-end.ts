import type { CarePlan, Coding, MedicationRequest, Task } from '@medplum/fhirtypes';
import { CAREPLAN_KEY_SYSTEM, SERVICE_CODE_SYSTEM } from '@kc/protocols';
import { OPEN_STATUSES, sameCoding } from '@kc/task-states';
import { planEndDay, planEndPassed, planEndsAt } from './care-plan-state';

/**
 * A plan this service completed because its end passed with nothing left open, tagged so (R4 CarePlan has no
 * statusReason to search): found again when the EHR moves its end later (`CarePlan?_tag=<system>|completed-at-its-end`).
 * Since session 50.
 */
export const COMPLETED_AT_ITS_END_TAG: Coding = {
  system: SERVICE_CODE_SYSTEM,
  code: 'completed-at-its-end',
  display: 'Completed: its end passed with every session and check closed',
};

/** The `_tag` search value of plans this service completed at their end. */
export const COMPLETED_AT_ITS_END_TAG_SEARCH = `${COMPLETED_AT_ITS_END_TAG.system}|${COMPLETED_AT_ITS_END_TAG.code}`;

/** Why, in the plan's note and the Provenance: what was done, and what the clinic does to go on. */
export const COMPLETED_AT_ITS_END =
  'Completed by ketamine-careplans: its end date passed with every session and check closed. To go on, extend the plan in the EHR (it is made active again), or apply the protocol again.';
export const REOPENED_FOR_ITS_NEW_END =
  'Active again: the EHR moved its end date after ketamine-careplans completed it. What its old end kept out is proposed again for approval.';
export const REOPENED_FOR_AN_INFUSION =
  'Active again: an infusion was charted under it after ketamine-careplans completed it at its end. Its post-infusion check is proposed; the plan is completed again once nothing under it is open.';

/** What is still open under a plan, as read (its Tasks and medication orders, any status). */
export interface StillOpenUnder {
  tasks: Task[];
  orders: MedicationRequest[];
}

/**
 * An active plan this service applied (its `$apply` key), whose end (`CarePlan.period.end`, the EHR's; a date alone is the whole clinic
 * day) has passed, with no Task under it open and no order under it still to give: completed, tagged and noted, so an
 * EHR reading CarePlan.status alone reads it over. Before session 50 it stayed active for ever (its status was left to
 * the EHR). A plan with something open (an overdue check, a session the pump is giving) waits for it: a clinician
 * closes it. Undefined when it is not to be completed.
 */
export function planCompletedAtItsEnd(
  carePlan: CarePlan,
  open: StillOpenUnder,
  now: Date,
  zone?: string,
): CarePlan | undefined {
  if (carePlan.status !== 'active' || !planEndPassed(carePlan, now, zone)) return undefined;
  // The EHR's own plans (no key of $apply's) are the EHR's to close.
  if (!carePlan.identifier?.some((i) => i.system === CAREPLAN_KEY_SYSTEM)) return undefined;
  const ref = `CarePlan/${carePlan.id}`;
  const under = (r: { basedOn?: Task['basedOn'] }) => (r.basedOn ?? []).some((b) => b.reference === ref);
  if (open.tasks.some((t) => under(t) && OPEN_STATUSES.includes(t.status))) return undefined;
  if (open.orders.some((o) => under(o) && (o.status === 'active' || o.status === 'on-hold'))) return undefined;
  return {
    ...carePlan,
    status: 'completed',
    meta: { ...carePlan.meta, tag: [...withoutTag(carePlan), COMPLETED_AT_ITS_END_TAG] },
    note: [...(carePlan.note ?? []), { time: now.toISOString(), text: COMPLETED_AT_ITS_END }],
  };
}

/**
 * A plan this service completed at its end (its tag) whose end the EHR has since moved past now, or removed: active
 * again, its tag taken off, noted. The completion's reason is gone, and the EHR extending a plan means to go on with it.
 * Undefined for any other plan (completed by the EHR, or its end still passed).
 */
export function planReopenedForItsNewEnd(carePlan: CarePlan, now: Date, zone?: string): CarePlan | undefined {
  if (carePlan.status !== 'completed' || !isCompletedAtItsEnd(carePlan)) return undefined;
  if (planEndPassed(carePlan, now, zone)) return undefined;
  return reopened(carePlan, REOPENED_FOR_ITS_NEW_END, now);
}

/**
 * A plan this service completed at its end (its tag), an infusion charted under it since: active again, its tag taken
 * off, noted, for the infusion's follow-up (its post-infusion check is due whatever the plan's end; sessions after the
 * end stay out), and completed again once nothing under it is open. Before session 51 the infusion was ignored, so a
 * patient given ketamine had no check. Undefined for any other plan: one the EHR completed or stopped is the EHR's.
 */
export function planReopenedForAnInfusion(carePlan: CarePlan, now: Date): CarePlan | undefined {
  if (carePlan.status !== 'completed' || !isCompletedAtItsEnd(carePlan)) return undefined;
  return reopened(carePlan, REOPENED_FOR_AN_INFUSION, now);
}

function reopened(carePlan: CarePlan, why: string, now: Date): CarePlan {
  return {
    ...carePlan,
    status: 'active',
    meta: { ...carePlan.meta, tag: withoutTag(carePlan) },
    note: [...(carePlan.note ?? []), { time: now.toISOString(), text: why }],
  };
}

/**
 * What the clinician page says of a plan still holding care whose end the EHR set: when it ends, and, once that has
 * passed, why it is not completed yet (something under it is still open: a clinician closes it). Undefined for a plan
 * with no end, or one over.
 */
export function planEndNote(carePlan: CarePlan, now: Date, zone?: string): string | undefined {
  const day = planEndDay(carePlan, zone);
  if (!day || planEndsAt(carePlan, zone) === undefined) return undefined;
  if (carePlan.status !== 'active' && carePlan.status !== 'draft') return undefined;
  if (!planEndPassed(carePlan, now, zone)) return `Ends ${day} (set in the EHR).`;
  return carePlan.status === 'active'
    ? `Its end (${day}, set in the EHR) has passed: it is completed once nothing under it is still open.`
    : `Its end (${day}, set in the EHR) has passed; never activated.`;
}

export function isCompletedAtItsEnd(carePlan: CarePlan): boolean {
  return Boolean(carePlan.meta?.tag?.some((t) => sameCoding(t, COMPLETED_AT_ITS_END_TAG)));
}

/** The plans of `plans` whose end has passed (planEndsAt in the clinic's zone): those worth reading what is open. */
export function plansPastTheirEnd(plans: CarePlan[], now: Date, zone?: string): CarePlan[] {
  return plans.filter((p) => planEndPassed(p, now, zone));
}

function withoutTag(carePlan: CarePlan): Coding[] {
  return (carePlan.meta?.tag ?? []).filter((t) => !sameCoding(t, COMPLETED_AT_ITS_END_TAG));
}
