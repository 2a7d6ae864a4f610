import type { Period, PlanDefinition, PlanDefinitionAction, Procedure, Task } from '@medplum/fhirtypes';
import {
  clinicPeriod,
  INFUSION_COMPLETED_TRIGGER,
  notBefore,
  periodUnion,
  PROTOCOL_WINDOW_EXTENSION,
  protocolActionOf,
  protocolWindowOf,
  triggeredActions,
} from '@kc/protocols';
import { isClosedByStatus, isOpen, samePeriod, windowAsSet } from '@kc/task-states';
import { performedOf } from './infusion-event';
import { followUpWindow } from './plan-follow-ups';
import { dueOutsideProtocolWindow } from './windows-moved-in-ehr';

/** A follow-up of a re-timed infusion with its windows counted again from the infusion's time now. */
export interface RetimedFollowUp {
  /**
   * The Task with its protocol window (the protocol-window extension) from the infusion's time now, and its due window
   * too when that was the protocol's own proposal. Not yet followed (changesOfNewWindow stamps and times the rest).
   */
  task: Task & { id: string };
  /** Whether its due window moved (else only its protocol window: a clinician's or a booking's time stands). */
  dueMoved: boolean;
  /** Why, in the clinic's words: the infusion's times, the windows' from and to. */
  reason: string;
}

/**
 * The open follow-ups of an infusion whose time the EHR corrected after they were planned (Procedure.performed[x]
 * edited): their windows counted again from the time it now says (since session 45; before, the post-infusion check
 * and the next session kept windows counted from the time first charted, so a check could fall due more than a week
 * after the infusion it checks).
 *
 * A Task was planned from an earlier time when its protocol window is the one the protocol gives from that time (as
 * instantiateAction wrote it, or as a recount here did). Its protocol window then moves to the one from the time now;
 * its due window moves with it only when it is the protocol's own proposal (not rescheduled by a clinician, booked, or
 * moved in the EHR: those are the clinic's times and stand, and the lists say when one falls outside its protocol window
 * now). The recount is the protocol's window as it is, past or not: a check whose week ended already is overdue, which
 * is the truth about it. Tasks closed, of other infusions, or of actions the protocol no longer has are left. Pure.
 */
export function followUpsOfRetimedInfusion(input: {
  procedureId: string;
  /** The infusion's versions, newest first (its instance history): the first is as it reads now. */
  versions: Procedure[];
  /** The plan's Tasks (any): its open follow-ups of this infusion are found among them. */
  tasks: Task[];
  plan: PlanDefinition;
  zone?: string;
}): RetimedFollowUp[] {
  const { procedureId, plan, zone } = input;
  const [now, ...earlier] = performedTimesOf(input.versions);
  if (!now || !earlier.length) return [];
  const actions = new Map(triggeredActions(plan, INFUSION_COMPLETED_TRIGGER).map((a) => [a.id, a]));
  const reference = `Procedure/${procedureId}`;
  return input.tasks.flatMap((task): RetimedFollowUp[] => {
    const action = actions.get(protocolActionOf(task));
    // Open here and in the EHR: one it closed by its status is the EHR's (TasksClosedInEhr), not to be counted again.
    if (!task.id || !isOpen(task) || isClosedByStatus(task) || task.reasonReference?.reference !== reference || !action)
      return [];
    const from = earlier.find((performed) => plannedFrom(task, action, performed, zone));
    const window = followUpWindow(action, now, zone);
    if (!from || samePeriod(protocolWindowOf(task), window)) return [];
    const proposed = proposedFrom(task, followUpWindow(action, from, zone));
    const recounted = withProtocolWindow({ ...task, id: task.id }, window);
    const retimed = proposed ? { ...recounted, restriction: { ...recounted.restriction, period: window } } : recounted;
    return [{ task: retimed, dueMoved: proposed, reason: retimedWhy(task, retimed, { from, to: now }, zone) }];
  });
}

/**
 * The times a completed infusion was recorded at, from its versions (newest first): as it reads now first, then each
 * earlier completed time it had, once. Empty when its latest version is not completed (in error, planned).
 */
export function performedTimesOf(versions: Procedure[]): Period[] {
  if (versions[0]?.status !== 'completed') return [];
  const times: Period[] = [];
  for (const version of versions) {
    const performed = version.status === 'completed' ? performedOf(version) : undefined;
    if (performed && !times.some((t) => samePeriod(t, performed))) times.push(performed);
  }
  return times;
}

/** Whether the Task's protocol window is the one the protocol gave it from an infusion performed then. */
function plannedFrom(task: Task, action: PlanDefinitionAction, performed: Period, zone?: string): boolean {
  const window = followUpWindow(action, performed, zone);
  const written = protocolWindowOf(task);
  return samePeriod(written, window) || samePeriod(written, periodUnion(window, asWritten(task, window)));
}

/**
 * Whether its due window is still the protocol's proposal from that window: as written (never before the Task), or as
 * a recount set it, and not moved in the EHR since (its window as set here, when stamped, is the same).
 */
function proposedFrom(task: Task, window: Period): boolean {
  const due = task.restriction?.period;
  const set = windowAsSet(task);
  return (samePeriod(due, window) || samePeriod(due, asWritten(task, window))) && (!set || samePeriod(set, due));
}

/** A window as instantiateAction wrote it on the Task: not before the Task was written. */
function asWritten(task: Task, window: Period): Period {
  const authored = Date.parse(task.authoredOn ?? '');
  return Number.isNaN(authored) ? window : notBefore(window, authored);
}

function withProtocolWindow<T extends Task>(task: T, window: Period): T {
  return {
    ...task,
    extension: (task.extension ?? []).map((e) =>
      e.url === PROTOCOL_WINDOW_EXTENSION ? { url: PROTOCOL_WINDOW_EXTENSION, valuePeriod: window } : e,
    ),
  };
}

function retimedWhy(before: Task, after: Task, infusion: { from: Period; to: Period }, zone?: string): string {
  const words = (p: Period | undefined) => (p ? clinicPeriod(p, zone) : 'no window');
  const due = after.restriction?.period;
  const moved = !samePeriod(before.restriction?.period, due);
  const outside = dueOutsideProtocolWindow(due, protocolWindowOf(after), zone);
  return (
    `The infusion it follows was re-timed in the EHR, from ${words(infusion.from)} to ${words(infusion.to)}: ` +
    `its protocol window is now ${words(protocolWindowOf(after))}` +
    (moved
      ? `, and it is due then (was ${words(before.restriction?.period)})`
      : `; its due window (${words(due)}), set by the clinic, stands`) +
    (outside ? `. ${outside}` : '')
  );
}
