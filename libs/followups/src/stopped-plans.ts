import type { CarePlan, Task } from '@medplum/fhirtypes';
import { cancelledProposal, isAwaitingApproval, transition, type AuthorisableRequest } from '@kc/task-states';
import { carePlanHoldsCare, carePlanReferenceOf } from './care-plan-state';

export interface Withdrawal {
  /** The Task as read (its version is the If-Match of the write). */
  task: Task;
  withdrawn: Task;
  /** Its draft proposal, as read and cancelled. */
  proposal?: { read: AuthorisableRequest; cancelled: AuthorisableRequest };
}

/**
 * The Tasks awaiting approval on plans that are over (CarePlan revoked, completed or entered in error), withdrawn
 * with why, and their draft proposals cancelled: nobody can approve them any more (the approval guard refuses), so
 * they leave the worklist. A paused plan (on-hold) keeps its Tasks; approved Tasks keep theirs (their orders are the
 * clinician's or the EHR's to stop). Pure: the worker reads the Tasks with their CarePlans and proposals.
 */
export function withdrawalsForStoppedPlans(input: {
  tasks: Task[];
  carePlans: Map<string, CarePlan>;
  proposals: Map<string, AuthorisableRequest>;
  now: Date;
}): Withdrawal[] {
  return input.tasks.flatMap((task) => {
    if (!isAwaitingApproval(task)) return [];
    const carePlanRef = carePlanReferenceOf(task);
    const carePlan = carePlanRef ? input.carePlans.get(carePlanRef) : undefined;
    const holds = carePlan && carePlanHoldsCare(carePlan);
    if (!holds || holds.ok || !holds.closed) return [];
    const reason = `Withdrawn: ${holds.reason}`;
    const proposal = task.focus?.reference ? input.proposals.get(task.focus.reference) : undefined;
    return [
      {
        task,
        withdrawn: transition(task, { event: 'withdraw', now: input.now, reason }),
        proposal:
          proposal && proposal.status === 'draft'
            ? { read: proposal, cancelled: cancelledProposal(proposal, reason) }
            : undefined,
      },
    ];
  });
}
