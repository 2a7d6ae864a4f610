import type { CommunicationRequest, Task } from '@medplum/fhirtypes';
import { isOpen, type AuthorisableRequest, type OpenOrder } from '@kc/task-states';
import { requestsWithdrawn, sessionBegunAtThePump, type Withdrawal } from './stopped-plans';

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
