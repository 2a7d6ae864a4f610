import type { CarePlan, Task } from '@medplum/fhirtypes';
import { TASK_KEY_SYSTEM } from '@kc/protocols';
import { type AuthorisableRequest } from '@kc/task-states';
import { carePlanHoldsCare, carePlanReferenceOf, dueAfterPlanEnd, planEndDay } from './care-plan-state';
import { taskProposedAgain, type ProposedAgain } from './replan-without-infusion';
import { isWithdrawnForPlanEnd } from './stopped-plans';

/**
 * The sessions of a plan withdrawn because its end came before them (isWithdrawnForPlanEnd), whose windows the plan's
 * end now allows (the EHR moved it later, or removed it): each proposed again, awaiting approval (an approved one's
 * order was cancelled with it: a clinician approves it again), under a key naming the one it stands in for, once.
 * Before session 50 they stayed withdrawn: a course the clinic extended had none of its next sessions to approve. Only
 * for a plan holding care (active, draft). `tasks`: the plan's Tasks in every status, those withdrawn and those proposed again among
 * them; `proposals`: the withdrawn ones' proposals (their `focus`), by reference.
 */
export function sessionsProposedAgainForNewEnd(input: {
  carePlan: CarePlan;
  tasks: Task[];
  proposals: Map<string, AuthorisableRequest>;
  now: Date;
  zone?: string;
}): ProposedAgain[] {
  const { carePlan, tasks, now, zone } = input;
  if (!carePlanHoldsCare(carePlan).ok) return [];
  const ref = `CarePlan/${carePlan.id}`;
  const keys = new Set(
    tasks.flatMap((t) => t.identifier?.filter((i) => i.system === TASK_KEY_SYSTEM) ?? []).map((i) => i.value),
  );
  const endNow = planEndDay(carePlan, zone);
  return tasks
    .filter((t) => carePlanReferenceOf(t) === ref && isWithdrawnForPlanEnd(t))
    .filter((t) => !dueAfterPlanEnd(carePlan, t.restriction?.period, zone))
    .map((task) => ({ task, key: `${carePlan.id}:after-end-${task.id}` }))
    .filter(({ key }) => !keys.has(key))
    .map(({ task, key }) =>
      taskProposedAgain(task, {
        key,
        reason: endNow
          ? `Proposed again: its plan's end was moved to ${endNow} in the EHR`
          : "Proposed again: its plan's end was removed in the EHR",
        proposal: task.focus?.reference ? input.proposals.get(task.focus.reference) : undefined,
        now,
      }),
    );
}
