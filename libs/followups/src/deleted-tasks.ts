import type { CommunicationRequest, MedicationAdministration, Task } from '@medplum/fhirtypes';
import { isOpen, isOpenOrder, openOrdersOfSession, type AuthorisableRequest, type OpenOrder } from '@kc/task-states';
import { givenBy } from './given-during-infusion-in-error';
import {
  givenSessionChanges,
  requestsWithdrawn,
  sessionBegunAtThePump,
  type GivenSessionChanges,
  type Withdrawal,
} from './stopped-plans';

/** Why the requests of a Task deleted on the FHIR server are cancelled (their statusReason, the Provenance's reason). */
export const DELETED_TASK_REASON = 'Withdrawn: its Task was deleted on the FHIR server';

/** What a deleted Task leaves to cancel: its requests as read and as withdrawn (the Task itself is gone). */
export type DeletedTaskWithdrawal = Pick<Withdrawal, 'task' | 'proposal' | 'order' | 'replacements' | 'reminders'>;

/**
 * A Task deleted on the FHIR server (an EHR) while open took the clinic's decision with it, but not what it
 * authorised: an approved session's order would stay active with no Task to answer it (no hold, no withdrawal, no
 * sweep finds an order through a Task that is gone), and its reminders would still be sent. So its order still to be
 * given is cancelled, its draft proposal too, and its reminders not sent are revoked, as a stopped plan's are. One
 * whose session the pump has begun is left to its infusion; a Task already closed (done, rejected, withdrawn) leaves
 * nothing. Pure: `task` is the last version the server kept.
 */
export function withdrawalOfDeletedTask(input: {
  task: Task;
  proposal?: AuthorisableRequest;
  open?: OpenOrder;
  reminders: CommunicationRequest[];
}): DeletedTaskWithdrawal | undefined {
  const { task, open } = input;
  if (!isOpen(task)) return undefined;
  if (sessionBegunAtThePump(open)) return undefined;
  const withdrawal = { task, ...requestsWithdrawn(task, DELETED_TASK_REASON, input) };
  return withdrawal.proposal || withdrawal.order || withdrawal.reminders.length ? withdrawal : undefined;
}

/** What a deleted Task's session given at the pump leaves to close: its open orders completed, its reminders revoked. */
export interface DeletedTaskGiven extends GivenSessionChanges {
  /** The pump's record that gave it. */
  administration: MedicationAdministration;
}

/**
 * A Task deleted on the FHIR server whose session the pump recorded giving (a completed administration of one of its
 * open orders: the one written here, or the EHR's): the drug went in, so its open orders are completed, as its
 * infusion's follow-up would have done had the Task stayed. Before session 42 they were left to that follow-up, which
 * reaches an order only through its Task (the EHR's replacement) or does not run under a plan stopped since, so they
 * stayed active (clinic day, seed 2123). One still running at the pump is left to it. Pure.
 */
export function givenOfDeletedTask(input: {
  task: Task;
  open?: OpenOrder;
  reminders: CommunicationRequest[];
  zone?: string;
}): DeletedTaskGiven | undefined {
  const { task } = input;
  if (!isOpen(task)) return undefined;
  const orders = openOrdersOfSession(input.open).filter((o) => isOpenOrder(o.order));
  const administration = orders.flatMap((o) => o.administrations).find((a) => a.status === 'completed');
  if (!administration?.id) return undefined;
  const by = givenBy(administration, input.zone);
  return {
    ...givenSessionChanges(
      task,
      orders.map((o) => o.order),
      by,
      input.reminders,
    ),
    administration,
  };
}
