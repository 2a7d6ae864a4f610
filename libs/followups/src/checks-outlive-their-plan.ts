import type { CarePlan, Task } from '@medplum/fhirtypes';
import { carePlanHoldsCare } from './care-plan-state';
import { isEndedForDeath, wasEndedForDeath } from './deceased-patients';

/**
 * A follow-up of an infusion that was given, which orders nothing: the post-infusion check (Task.reasonReference names
 * the infusion; a session's Task has its order to give as its focus).
 */
export function isCheckOfAnInfusion(task: Pick<Task, 'reasonReference' | 'focus'>): boolean {
  return (
    !task.focus?.reference?.startsWith('MedicationRequest/') &&
    Boolean(task.reasonReference?.reference?.startsWith('Procedure/'))
  );
}

/** The statuses of a plan stopped, over or paused in the EHR. */
const CLOSED_IN_EHR: readonly CarePlan['status'][] = ['revoked', 'completed', 'on-hold'];

/**
 * A plan whose post-infusion checks outlive it: the course stopped, over or paused in the EHR; not written in error (the
 * record was wrong, not the course), nor ended for the patient's death.
 */
function checksOutlive(carePlan: CarePlan): boolean {
  return CLOSED_IN_EHR.includes(carePlan.status) && !wasEndedForDeath(carePlan);
}

/**
 * A plan closed in the EHR (stopped or completed; not written in error, not ended for the patient's death) under which
 * an infusion charted still has its post-infusion check proposed, and nothing more: no session, no contraindication
 * recorded (since session 52; before, such an infusion had no check, and from session 51 the clinic was told so).
 */
export function takesChecksOnly(carePlan: CarePlan): boolean {
  // Paused, it takes every follow-up (its sessions wait for it to resume).
  return carePlan.status !== 'on-hold' && checksOutlive(carePlan);
}

/**
 * Why an infusion charted under this plan has nothing planned for it, not even its post-infusion check (the clinic is
 * told: InfusionsUnderClosedPlans): the EHR closed the plan so that no check outlives it (written in error). Undefined
 * where something is planned (an open plan; one stopped or completed takes its check) and for a plan ended for the
 * patient's death (its own alert).
 */
export function nothingPlannedUnder(carePlan: CarePlan): string | undefined {
  if (isEndedForDeath(carePlan) || takesChecksOnly(carePlan)) return undefined;
  const holds = carePlanHoldsCare(carePlan);
  return !holds.ok && holds.closed ? holds.reason : undefined;
}

/**
 * Whether this Task may still be approved, done and reminded under its plan: a plan holding care (carePlanHoldsCare)
 * holds every Task; one the EHR stopped, completed or paused holds its post-infusion checks still. The patient was
 * given the ketamine, and its check is due whatever becomes of the course (before session 52 it was withdrawn with
 * the plan, so a patient whose course the EHR stopped the day after an infusion had no check of it). Not under a plan
 * written in error (the record was wrong, not the course) nor one ended for the patient's death.
 */
export function carePlanHoldsTask(
  carePlan: CarePlan,
  task: Pick<Task, 'reasonReference' | 'focus'>,
): ReturnType<typeof carePlanHoldsCare> {
  const holds = carePlanHoldsCare(carePlan);
  return !holds.ok && checksOutlive(carePlan) && isCheckOfAnInfusion(task) ? { ok: true } : holds;
}
