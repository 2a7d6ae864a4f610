import type {
  ActivityDefinition,
  Annotation,
  CarePlan,
  Communication,
  CommunicationRequest,
  Period,
  Patient,
  PlanDefinitionAction,
  PlanDefinitionActionRelatedAction,
  Reference,
  Task,
} from '@medplum/fhirtypes';
import {
  dueWindow,
  flattenActions,
  isTriggeredBy,
  protocolActionOf,
  REMINDER_KEY_SYSTEM,
  SERVICE_CODE_SYSTEM,
  stripUndefined,
  TASK_APPROVED_TRIGGER,
  whenInWords,
  activityDefinitionIn,
  type ResolvedPlan,
} from '@kc/protocols';
import { isApproved, isOpen, isTaskHeldForContraindication } from '@kc/task-states';
import { carePlanHoldsTask } from './checks-outlive-their-plan';
import { isRecordedDeceased } from './deceased-patients';
import type { InfusionTaskUpdate } from './superseded';

/**
 * Patient reminders (the CommunicationRequests of a plan: nothing to eat for 6 h before, a ride home, no driving
 * for 24 h, the one-week check). They are actions of the protocol's PlanDefinition triggered by `task-approved`:
 * each relatedAction names an action whose Tasks it follows and when, relative to that Task's due window. A Task
 * gets its reminders when a clinician approves it; a reschedule moves them, a rejection revokes them. Pure: the
 * API writes them with the decision and the worker delivers each at its time (occurrenceDateTime).
 */

export interface ReminderRule {
  action: PlanDefinitionAction;
  related: PlanDefinitionActionRelatedAction;
  activity: ActivityDefinition;
}

export interface PlannedReminder {
  key: string;
  actionId: string;
  request: CommunicationRequest;
}

/** The reminder rules of a protocol that follow the Tasks of one of its actions (by the action's id). */
export function reminderRulesFor(
  { plan, definitions }: ResolvedPlan,
  protocolActionId: string | undefined,
): ReminderRule[] {
  if (!protocolActionId) return [];
  return flattenActions(plan.action ?? [])
    .filter((action) => isTriggeredBy(action, TASK_APPROVED_TRIGGER))
    .flatMap((action) => {
      const related = action.relatedAction?.find((r) => r.actionId === protocolActionId);
      const activity = activityDefinitionIn(definitions, action.definitionCanonical);
      return related && activity?.kind === 'CommunicationRequest' ? [{ action, related, activity }] : [];
    });
}

/**
 * The reminder rules of a Task: its plan's protocol (the catalog's, or an EHR's on the FHIR server) and the Task's
 * protocol action. None when its plan's protocol is not found.
 */
export function reminderRulesForTask(task: Task, protocol: ResolvedPlan | undefined): ReminderRule[] {
  return protocol ? reminderRulesFor(protocol, protocolActionOf(task)) : [];
}

/**
 * One reminder per Task, reminder action and time, whoever writes it and however often: `Task/<id>/<action>@<time>`.
 * The time is in the key so a session rescheduled after a reminder went out gets a new one for its new date.
 */
function reminderKey(taskId: string, rule: Pick<ReminderRule, 'action'>, sendAt: string): string {
  return `Task/${taskId}/${rule.action.id}@${sendAt}`;
}

/** The reminder action a key names. */
function actionOfKey(key: string | undefined): string | undefined {
  return key?.split('@')[0].split('/').pop();
}

/**
 * The reminders of an approved Task, timed from its current due window (days before it counted on the clinic's
 * calendar, `zone`: two days before a 09:00 session is 09:00, summer time or not). None once that window has closed: a
 * reminder about a session that can no longer happen would only confuse the patient.
 */
export function plannedReminders(
  task: Task & { id: string },
  rules: ReminderRule[],
  now: Date,
  zone?: string,
): PlannedReminder[] {
  const window = task.restriction?.period;
  if (!window?.start || !window.end || Date.parse(window.end) <= now.getTime()) return [];
  return rules.map((rule) => {
    const sendAt = sendTimeFor(window, rule.related, zone);
    const key = reminderKey(task.id, rule, sendAt);
    const request: CommunicationRequest = {
      resourceType: 'CommunicationRequest',
      identifier: [{ system: REMINDER_KEY_SYSTEM, value: key }],
      status: 'active',
      category: rule.activity.code ? [rule.activity.code] : undefined,
      priority: rule.activity.priority,
      subject: task.for as Reference<Patient> | undefined,
      recipient: task.for ? [task.for as Reference<Patient>] : undefined,
      about: [{ reference: `Task/${task.id}`, display: task.description }],
      basedOn: task.basedOn?.filter((b) => b.reference?.startsWith('CarePlan/')),
      payload: rule.activity.description ? [{ contentString: rule.activity.description }] : undefined,
      occurrenceDateTime: sendAt,
      authoredOn: now.toISOString(),
    };
    return { key, actionId: rule.action.id!, request: stripUndefined(request) };
  });
}

/**
 * What a decision does to a Task's reminders (`existing`: every reminder on record about the Task): the active one
 * of each kind moves to its new time; a kind with none active gets a new one unless one for that very time exists:
 * one sent is not sent again, one revoked is active again (a session returned for review when its order was closed
 * in the EHR, approved again at the same time; its key is the time's, so it cannot be written twice). So a reschedule
 * after a reminder went out reminds the patient again for the new date.
 */
export function reminderChanges(
  planned: PlannedReminder[],
  existing: CommunicationRequest[],
): { create: CommunicationRequest[]; move: CommunicationRequest[] } {
  const create: CommunicationRequest[] = [];
  const move: CommunicationRequest[] = [];
  for (const { actionId, request } of planned) {
    const ofKind = existing.filter((r) => actionOfKey(keyOf(r)) === actionId);
    const active = ofKind.find((r) => r.status === 'active');
    if (active) {
      if (active.occurrenceDateTime !== request.occurrenceDateTime)
        move.push({ ...active, occurrenceDateTime: request.occurrenceDateTime });
      continue;
    }
    const same = ofKind.find((r) => r.occurrenceDateTime === request.occurrenceDateTime);
    if (!same) create.push(request);
    else if (same.status === 'revoked') {
      const { statusReason: _revoked, ...rest } = same;
      move.push({ ...rest, status: 'active' });
    }
  }
  return { create, move };
}

/** A reminder that must not go out any more, with why (R4 CommunicationRequest status `revoked`). */
export function revokedReminder(request: CommunicationRequest, reason: string): CommunicationRequest {
  return { ...request, status: 'revoked', statusReason: { text: reason } };
}

/** The active reminders about `task` among `reminders`, each as read and revoked with `reason`. */
export function remindersRevokedFor(
  task: Task,
  reminders: CommunicationRequest[],
  reason: string,
): { read: CommunicationRequest; revoked: CommunicationRequest }[] {
  return reminders
    .filter((r) => r.status === 'active' && isReminderAbout(r, task.id))
    .map((read) => ({ read, revoked: revokedReminder(read, reason) }));
}

/** Why a check's reminders not sent yet are revoked once it is recorded as done (here, or in the EHR). */
export function checkDoneWhy(task: Task): string {
  return `Not sent: the ${task.description ?? 'check'} was recorded as done`;
}

/**
 * The active reminders about Tasks an infusion has answered (its session took place, or a later infusion made it
 * moot), revoked with why. Delivery would revoke each at its time (deliveryDecision); revoking them with the Tasks'
 * own update means an EHR reading CommunicationRequest.status never sees a reminder pending for a session that took
 * place or will not.
 */
export function remindersEndedBy(
  answered: Pick<InfusionTaskUpdate, 'task' | 'outcome' | 'by'>[],
  reminders: CommunicationRequest[],
): CommunicationRequest[] {
  const why = new Map(answered.map((u) => [`Task/${u.task.id}`, endedWhy(u)]));
  return reminders
    .filter((r) => r.status === 'active' && isReminder(r))
    .flatMap((r) => {
      const reason = why.get(aboutTask(r) ?? '');
      return reason ? [revokedReminder(r, reason)] : [];
    });
}

function endedWhy({ task, outcome, by }: Pick<InfusionTaskUpdate, 'task' | 'outcome' | 'by'>): string {
  const what = task.description ?? 'session';
  return outcome === 'done'
    ? `Not sent: the ${what} took place (${by.display ?? by.reference})`
    : `Not sent: the ${what} is no longer planned (superseded by ${by.display ? `the ${by.display}` : by.reference})`;
}

export function isReminder(request: CommunicationRequest): boolean {
  return Boolean(request.identifier?.some((i) => i.system === REMINDER_KEY_SYSTEM));
}

/** When a CommunicationRequest is to be delivered: its occurrence (a time, or the start of a period). */
export function sendTimeOf(request: CommunicationRequest): string | undefined {
  return request.occurrenceDateTime ?? request.occurrencePeriod?.start;
}

/** The service's own CommunicationRequests (its category codes): the only ones it delivers. */
export function isDeliverable(request: CommunicationRequest): boolean {
  return Boolean(request.category?.some((c) => c.coding?.some((coding) => coding.system === SERVICE_CODE_SYSTEM)));
}

export type DeliveryDecision =
  | { action: 'send' }
  | { action: 'skip'; why: string }
  /** The reminder's time changed since the job was planned: deliver it at its new time instead. */
  | { action: 'reschedule'; sendAt: string }
  | { action: 'revoke'; why: string };

/**
 * At delivery time, from what is on record now (never from what the job was told when it was queued): only an
 * active request, still due when this job was planned, under a plan that still holds care (a stopped one revokes it,
 * a paused one keeps it unsent), about a Task that is approved and still open.
 */
export function deliveryDecision(input: {
  request: CommunicationRequest;
  plannedAt: string;
  /** The Task the reminder is about (`about`), when it has one. */
  task?: Task;
  /** The CarePlan it is based on, when it has one. */
  carePlan?: CarePlan;
  /**
   * Unresolved contraindications on the plan, by name, that gate the Task it is about (a pregnancy recorded since the session
   * was approved): held, not sent, while a clinician has not decided.
   */
  contraindications?: string[];
  /** The patient it goes to, when read: one recorded as deceased is sent nothing (since session 44). */
  patient?: Pick<Patient, 'deceasedBoolean' | 'deceasedDateTime'>;
  now: Date;
}): DeliveryDecision {
  const { request, task, now } = input;
  if (request.status !== 'active') return { action: 'skip', why: `request is ${request.status}` };
  if (input.patient && isRecordedDeceased(input.patient))
    return { action: 'revoke', why: 'Not sent: the patient is recorded as deceased' };
  const sendAt = sendTimeOf(request);
  if (!sendAt) return { action: 'skip', why: 'request has no occurrence' };
  if (Date.parse(sendAt) !== Date.parse(input.plannedAt)) return { action: 'reschedule', sendAt };
  // A reminder of a post-infusion check goes on under a plan stopped since (carePlanHoldsTask); any other, not.
  const plan = input.carePlan && carePlanHoldsTask(input.carePlan, task ?? {});
  if (plan && !plan.ok)
    return plan.closed ? { action: 'revoke', why: `Not sent: ${plan.reason}` } : { action: 'skip', why: plan.reason };
  if (aboutTask(request) && !task) return { action: 'revoke', why: 'The Task it was about no longer exists' };
  if (input.contraindications?.length)
    return {
      action: 'skip',
      why: `Not sent: a contraindication on its plan awaits a clinician (${input.contraindications.join('; ')})`,
    };
  // Held with its order (a contraindication found after approval): kept for the release, whatever issue holds it.
  if (task && isTaskHeldForContraindication(task))
    return { action: 'skip', why: 'Not sent: its session is on hold for a contraindication' };
  // A check recorded before its reminder went out (POST /tasks/{id}/$complete): asking for it would confuse the patient.
  if (task?.status === 'completed')
    return { action: 'revoke', why: `Not sent: the ${task.description ?? 'Task'} was already done` };
  if (task && !(isOpen(task) && isApproved(task)))
    return { action: 'revoke', why: `Not sent: the ${task.description ?? 'Task'} is no longer planned` };
  const closes = task?.restriction?.period?.end ?? request.occurrencePeriod?.end;
  if (closes && Date.parse(closes) <= now.getTime())
    return { action: 'revoke', why: 'Not sent: its window closed before it could be delivered' };
  return { action: 'send' };
}

/** The rule a reminder on record was planned by (its key names the reminder action), among a Task's rules. */
export function reminderRuleOf(request: CommunicationRequest, rules: ReminderRule[]): ReminderRule | undefined {
  const actionId = actionOfKey(keyOf(request));
  return rules.find((rule) => rule.action.id === actionId);
}

export function aboutTask(request: CommunicationRequest): string | undefined {
  return request.about?.map((a) => a.reference).find((r) => /^Task\/[^/]+$/.test(r ?? ''));
}

/** A reminder this service planned about Task/`taskId` (not another CommunicationRequest on the plan). */
export function isReminderAbout(request: CommunicationRequest, taskId: string | undefined): boolean {
  return isReminder(request) && aboutTask(request) === `Task/${taskId}`;
}

/**
 * The record of a delivered reminder (R4 Communication, completed), with the channels it went out on. An EHR
 * reading Communication?based-on=CommunicationRequest/x finds exactly one.
 */
/**
 * The reminder as it goes out: its instruction, then when what it is about is, from the Task's window as it stands now
 * (booked, a day, or the days it may be given) in the clinic's days and time: "It is booked for Tuesday 5 January 2027 at
 * 09:00 UTC." A patient reads the time of their session, not only that one is coming. As it is when the Task has no
 * window.
 */
export function reminderAsSent<T extends CommunicationRequest>(request: T, task: Task | undefined, zone?: string): T {
  const when = task?.restriction?.period && whenInWords(task.restriction.period, zone);
  if (!when || !request.payload?.length) return request;
  return { ...request, payload: [...request.payload, { contentString: `It ${when}.` }] };
}

export function deliveredCommunication(input: {
  request: CommunicationRequest & { id: string };
  sent: Date;
  channels: string[];
  /** What the clinic must know about this delivery (shortNotice), as a note. */
  note?: Annotation;
}): Communication {
  const { request } = input;
  return stripUndefined<Communication>({
    resourceType: 'Communication',
    identifier: [{ system: REMINDER_KEY_SYSTEM, value: `CommunicationRequest/${request.id}` }],
    basedOn: [{ reference: `CommunicationRequest/${request.id}` }],
    status: 'completed',
    category: request.category,
    priority: request.priority,
    medium: input.channels.map((channel) => ({ text: channel })),
    subject: request.subject,
    recipient: request.recipient,
    about: request.about,
    payload: request.payload,
    sent: input.sent.toISOString(),
    note: input.note ? [input.note] : undefined,
  });
}

function sendTimeFor(window: Period, related: PlanDefinitionActionRelatedAction, zone?: string): string {
  return dueWindow(window, related, 'relatedAction', zone).start!;
}

function keyOf(request: CommunicationRequest): string | undefined {
  return request.identifier?.find((i) => i.system === REMINDER_KEY_SYSTEM)?.value;
}
