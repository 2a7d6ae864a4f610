import type { CommunicationRequest, Period, Task } from '@medplum/fhirtypes';
import { clinicPeriod, periodWithin, protocolWindowOf } from '@kc/protocols';
import {
  APPROVED_OUTSIDE,
  approvedOutside,
  isApproved,
  transition,
  windowAsSet,
  windowMovedOutside,
} from '@kc/task-states';
import { isReminderAbout, plannedReminders, reminderChanges, type ReminderRule } from './reminders';

export interface WindowFollowed {
  /** The Task with its moved window as the one set here (and overdue no more when it ends later than now). */
  task: Task;
  /** Its reminders timed from the moved window: those on record moved, those missing (sent for the old time) new. */
  create: CommunicationRequest[];
  move: CommunicationRequest[];
  /** Why, in the clinic's words: from and to, and whether the protocol allows the new window. */
  reason: string;
}

/**
 * What a Task whose due window was moved outside this service leaves to do (windowMovedOutside: an EHR edited
 * Task.restriction.period), as a clinician's reschedule or a booking would have done it here (since session 44; before,
 * its reminders went out for the old time, the fasting one too, and an overdue session moved to next week still read
 * overdue):
 * - the moved window becomes the one set here, and an overdue Task due again is not overdue;
 * - an approved session's reminders (held with it too) move to their times for the new window, and one already sent for
 *   the old time is sent again for the new one (reminderChanges). A Task awaiting approval has none: its approval times
 *   them from the window it has then.
 * The window itself stands as moved, inside its protocol window or not: the EHR's scheduling is the clinic's; one
 * outside the protocol's is said on the lists (dueOutsideProtocolWindow) and in the Provenance's reason. Pure.
 */
export function changesOfWindowMovedInEhr(input: {
  task: Task & { id: string };
  rules: ReminderRule[];
  /** The reminders on record about the Task (any status). */
  reminders: CommunicationRequest[];
  now: Date;
  zone?: string;
}): WindowFollowed | undefined {
  const { task, zone } = input;
  if (!windowMovedOutside(task)) return undefined;
  return changesOfNewWindow({ ...input, reason: movedWhy(task, zone) });
}

/**
 * A Task's due window as it now reads (Task.restriction.period, moved by the EHR or by this service's own recount)
 * made the one set here, with what follows from it: overdue no more when it ends later than now, and an approved
 * session's reminders timed from it (moved, or new for one sent for the old time). Pure.
 */
export function changesOfNewWindow(input: {
  task: Task & { id: string };
  rules: ReminderRule[];
  reminders: CommunicationRequest[];
  now: Date;
  zone?: string;
  reason: string;
}): WindowFollowed {
  const { task, now, zone } = input;
  // One the EHR set to be done while it awaited approval goes back to draft in this same write, as hearing that change
  // does (TasksChangedInEhr): no version written here says it is to be done unapproved (planned-task, kc-task-3).
  const returned = approvedOutside(task) ? transition(task, { event: 'return-unapproved', now }) : task;
  const followed = { ...transition(returned, { event: 'follow-window', now }), id: task.id };
  const { create, move } = hasReminders(task)
    ? reminderChanges(
        plannedReminders(followed, input.rules, now, zone),
        input.reminders.filter((r) => isReminderAbout(r, task.id)),
      )
    : { create: [], move: [] };
  const reason = returned === task ? input.reason : `${input.reason}. ${APPROVED_OUTSIDE.display}`;
  return { task: followed, create, move, reason };
}

/** A Task reminders are planned for: an approved session, or one held with its order (its reminders wait, unsent). */
export function hasReminders(task: Task): boolean {
  return isApproved(task) || task.status === 'on-hold';
}

/**
 * A due window (Task.restriction.period) no writer here could have set, outside the protocol's (the protocol-window
 * extension): a clinician's reschedule and a booking stay within it, and so do the service's own proposals, so it was
 * moved in the EHR. In the clinic's words; undefined when within, or when either is unknown.
 */
export function dueOutsideProtocolWindow(
  due: Period | undefined,
  allowed: Period | undefined,
  zone?: string,
): string | undefined {
  if (!due?.start || !due.end || !allowed?.start || !allowed.end || periodWithin(due, allowed)) return undefined;
  return `Due outside its protocol window (${clinicPeriod(allowed, zone)})`;
}

function movedWhy(task: Task, zone: string | undefined): string {
  const words = (p: Period | undefined) => (p ? clinicPeriod(p, zone) : 'no window');
  const outside = dueOutsideProtocolWindow(task.restriction?.period, protocolWindowOf(task), zone);
  return (
    `Its window was moved outside ketamine-careplans, from ${words(windowAsSet(task))} to ` +
    `${words(task.restriction?.period)}${outside ? `. ${outside}` : ''}`
  );
}
