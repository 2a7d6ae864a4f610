import type { Quantity, Task } from '@medplum/fhirtypes';
import {
  addDuration,
  clinicDateTime,
  dueWindow,
  MINIMUM_NOTICE_EXTENSION,
  protocolWindowOf,
  UTC_ZONE,
} from '@kc/protocols';
import type { ReminderRule } from './reminders';

/**
 * Whether a reminder gives the patient the notice its instruction needs (its ActivityDefinition's minimum-notice:
 * fasting for 6 hours needs 6 hours before the session), measured to the start of the Task's window (the booked
 * slot, once a clinician rescheduled the session to it). Pure. A reminder short of it is still sent (late is better
 * than never for the patient), and the clinic is told: before approving (noticeIfDecidedNow, on the worklist) and
 * once it went out (shortNotice, on the Communication).
 */

interface Shortfall {
  /** ms between sending and the window's start; 0 or less: sent after it opened. */
  given: number;
  needed: Quantity;
  /** The window's start, as a clinician reads it. */
  opens: string;
  what: string;
}

/** Why a reminder going out at `now` gives less notice than it needs, for the clinic to confirm before the session. */
export function shortNotice(input: {
  rule?: ReminderRule;
  task?: Task;
  now: Date;
  /** The clinic's time zone, which the window's start is read in. UTC unless given. */
  zone?: string;
}): string | undefined {
  const short = shortfall(input.rule, input.task, input.now, input.zone ?? UTC_ZONE);
  if (!short) return undefined;
  const sent = short.given > 0 ? `${durationInWords(short.given)} before` : 'after';
  return (
    `Sent ${sent} the window of “${short.what}” opened (${short.opens}); this instruction needs ` +
    `${short.needed.value} ${short.needed.unit} of notice: confirm with the patient before the infusion.`
  );
}

/**
 * What approving a Task now would do to its reminders' notice: each reminder goes out at its time, or at once when
 * that time has passed. Undefined when every reminder would give the notice it needs.
 */
export function noticeIfDecidedNow(input: {
  rules: ReminderRule[];
  task: Task;
  now: Date;
  /** The decision, as the sentence starts: "Approving now" (default), "Rescheduling to these dates". */
  as?: string;
  /** The clinic's time zone: its calendar days, which a reminder's time may count in. UTC unless given. */
  zone?: string;
}): string | undefined {
  const zone = input.zone ?? UTC_ZONE;
  const window = input.task.restriction?.period;
  if (!window?.start) return undefined;
  const warnings = input.rules.flatMap((rule) => {
    const planned = Date.parse(dueWindow(window, rule.related, 'relatedAction', zone).start!);
    const sendAt = new Date(Math.max(planned, input.now.getTime()));
    const short = shortfall(rule, input.task, sendAt, zone);
    if (!short) return [];
    const when =
      short.given > 0 ? `${durationInWords(short.given)} before the window opens` : 'after the window opened';
    const name = rule.activity.title ?? rule.action.title ?? 'a reminder';
    const decision = input.as ?? 'Approving now';
    return [`${decision} sends “${name}” ${when}; it needs ${short.needed.value} ${short.needed.unit} of notice.`];
  });
  return warnings.length ? warnings.join(' ') : undefined;
}

function shortfall(
  rule: ReminderRule | undefined,
  task: Task | undefined,
  at: Date,
  zone: string,
): Shortfall | undefined {
  const needed = rule?.activity.extension?.find((e) => e.url === MINIMUM_NOTICE_EXTENSION)?.valueDuration;
  const start = task?.restriction?.period?.start;
  if (!needed || !start || !task) return undefined;
  const given = Date.parse(start) - at.getTime();
  if (given >= addDuration(0, needed, 'ActivityDefinition.extension(minimum-notice)')) return undefined;
  // A window already open that no clinician booked (still the protocol's, days wide): the session is not at its
  // start, and booking it will remind the patient again for the slot (reminderChanges). Nothing to confirm yet.
  if (given <= 0 && !isBooked(task)) return undefined;
  return {
    given,
    needed,
    opens: `${clinicDateTime(start, zone)} ${zone}`,
    what: task.description ?? 'the session',
  };
}

/** Rescheduled to a slot: its window is no longer the one the protocol allows (protocol-window). */
function isBooked(task: Task): boolean {
  const allowed = protocolWindowOf(task);
  const current = task.restriction?.period;
  return Boolean(allowed && current && (allowed.start !== current.start || allowed.end !== current.end));
}

/** e.g. "2 h 40 min", "45 min": how long, as a clinician says it. */
function durationInWords(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  const hours = Math.floor(minutes / 60);
  if (!hours) return `${minutes} min`;
  return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
}
