import type { Period, Task } from '@medplum/fhirtypes';

/**
 * The due window (Task.restriction.period) as this service last set it, kept beside it on the Task (fhir-profiles'
 * StructureDefinition window-as-set). When the two differ, someone outside the service (an EHR, a person in it) moved
 * the window by editing the Task: its reminders and its overdue state are then the service's to bring in line
 * (windowMovedOutside). Every writer of a window here goes through withWindow, so its own moves never read as outside.
 */
export const WINDOW_AS_SET_EXTENSION = 'https://ketamine-careplans.example/fhir/StructureDefinition/window-as-set';

/** The Task due in `period`, stamped as set by this service; as it is when there is no period to set. */
export function withWindow<T extends Task>(task: T, period: Period | undefined): T {
  if (!period) return task;
  return {
    ...task,
    restriction: { ...task.restriction, period },
    extension: [
      ...(task.extension ?? []).filter((e) => e.url !== WINDOW_AS_SET_EXTENSION),
      { url: WINDOW_AS_SET_EXTENSION, valuePeriod: period },
    ],
  };
}

/** The window this service last set on the Task; undefined on a Task written before session 44, or by someone else. */
export function windowAsSet(task: Task): Period | undefined {
  return task.extension?.find((e) => e.url === WINDOW_AS_SET_EXTENSION)?.valuePeriod;
}

/**
 * Whether the Task's due window is no longer the one this service set (compared as instants: `+00:00` and `Z` are the
 * same time). False when it carries no stamp: nothing says what the service set.
 */
export function windowDiffersFromSet(task: Task): boolean {
  const set = windowAsSet(task);
  if (!set) return false;
  return !samePeriod(set, task.restriction?.period);
}

/** Whether two periods are the same, compared as instants (`+00:00` and `Z` are the same time). */
export function samePeriod(a: Period | undefined, b: Period | undefined): boolean {
  return sameInstant(a?.start, b?.start) && sameInstant(a?.end, b?.end);
}

function sameInstant(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Date.parse(a) === Date.parse(b) || a === b;
}
