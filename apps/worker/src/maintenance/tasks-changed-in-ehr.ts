import { Injectable, Logger } from '@nestjs/common';
import type { Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { isTaskClosedInEhr } from '@kc/followups';
import { approvedOutside, transition, windowMovedOutside } from '@kc/task-states';
import { serviceChangeEntries } from './withdrawal-writes';
import { TasksClosedInEhr } from './tasks-closed-in-ehr';
import { WindowsMovedInEhr } from './windows-moved-in-ehr';

/** Why a Task set to be done outside this service awaits a clinician again (its statusReason, the Provenance's reason). */
export const SET_TO_BE_DONE_OUTSIDE =
  'Set to be done outside ketamine-careplans while it awaited approval: approve it here, which checks ' +
  'contraindications and writes its order';

/**
 * A Task an EHR changed by its status alone (notified, or found by the poll), read once:
 * - a Task it closed by its status: its orders closed and reminders revoked (TasksClosedInEhr);
 * - a Task it set to be done (ready, accepted, in progress) while it awaited approval here (approvedOutside): draft
 *   again, awaiting a clinician, why in its statusReason, with a Provenance naming the service (If-Match on the version
 *   read). Before session 43 such a Task went on the to-do list unapproved: no contraindication checked, no order
 *   written, and an EHR reading Task.status took it as approved.
 * - an open Task whose due window it moved (windowMovedOutside): followed (WindowsMovedInEhr), its reminders timed
 *   from the new window. A Task returned for approval is followed at its own notification, if it was moved too.
 * A conflict fails the job, whose retry reads again; anything else writes nothing.
 */
@Injectable()
export class TasksChangedInEhr {
  private readonly logger = new Logger(TasksChangedInEhr.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly tasksClosed: TasksClosedInEhr,
    private readonly windowsMoved: WindowsMovedInEhr,
  ) {}

  async heard(taskId: string, now = new Date()): Promise<HeardOutcome> {
    const none = { closed: 0, revoked: 0, returnedForApproval: 0, windowsFollowed: 0, remindersMoved: 0 };
    const task = await this.fhir.readIfExists<Task>('Task', taskId);
    if (task && isTaskClosedInEhr(task)) return { ...none, ...(await this.tasksClosed.close([task], now, 'fail')) };
    if (task?.id && !approvedOutside(task) && windowMovedOutside(task)) {
      const { followed, reminders } = await this.windowsMoved.follow({ ...task, id: task.id }, now);
      return { ...none, windowsFollowed: followed, remindersMoved: reminders };
    }
    if (!task || !approvedOutside(task)) return none;
    const returned = transition(task, { event: 'return-unapproved', now, reason: SET_TO_BE_DONE_OUTSIDE });
    await this.fhir.transaction(
      serviceChangeEntries(
        [{ resource: returned, read: task }],
        task,
        { activity: 'return for approval', reason: SET_TO_BE_DONE_OUTSIDE },
        now,
      ),
    );
    this.logger.log({ msg: 'returned for approval a Task set to be done outside', task: taskId, status: task.status });
    return { ...none, returnedForApproval: 1 };
  }
}

export interface HeardOutcome {
  closed: number;
  revoked: number;
  returnedForApproval: number;
  windowsFollowed: number;
  remindersMoved: number;
}
