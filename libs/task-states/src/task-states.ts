import type { CodeableConcept, Coding, Period, Reference, Task } from '@medplum/fhirtypes';
import { windowDiffersFromSet, withWindow } from './window-as-set';

/**
 * The lifecycle of a generated Task, in R4 terms (docs/task-states.md). Two fields carry it:
 * - `Task.status` is what an EHR reads: `draft` (not yet ready: awaiting a clinician), `ready` (approved, to be
 *   done), `rejected`, `completed`, `cancelled`. Nothing unapproved is ever `ready`, so an EHR reading only
 *   status and intent (`plan`: no authorisation by itself) never acts on a proposal.
 * - `Task.businessStatus` (this service's CodeSystem) is what the clinic sees: the state below.
 * Overdue is a state of an open Task: its status stays `draft` or `ready`, so whether it was approved is kept.
 */
export const TASK_STATES = [
  'awaiting-approval',
  'approved',
  'rescheduled',
  'overdue',
  'rejected',
  'done',
  'superseded',
  'withdrawn',
  'recorded-in-error',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

export type TaskEvent =
  | 'approve'
  | 'reject'
  | 'reschedule'
  | 'complete'
  | 'supersede'
  | 'withdraw'
  | 'mark-overdue'
  | 'assign'
  | 'change-dose'
  | 'return-for-review'
  | 'return-unapproved'
  | 'follow-window'
  | 'record-in-error';

export const TASK_STATE_SYSTEM = 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans';

const DISPLAY: Record<TaskState, string> = {
  'awaiting-approval': 'Awaiting clinician approval',
  approved: 'Approved',
  rescheduled: 'Rescheduled (approved for a new window)',
  overdue: 'Overdue',
  rejected: 'Rejected',
  done: 'Done',
  superseded: 'Superseded',
  withdrawn: 'Withdrawn: its plan was stopped',
  'recorded-in-error': 'Recorded in error: the infusion that closed it did not happen',
};

/**
 * Why an approved session awaits a clinician again (its `statusReason`): the order its approval wrote was cancelled,
 * stopped or entered in error outside this service, with nothing replacing it (fhir-profiles' CodeSystem).
 */
export const ORDER_CLOSED_IN_EHR: Coding = {
  system: TASK_STATE_SYSTEM,
  code: 'order-closed-in-ehr',
  display: 'Returned for review: its order was closed in the EHR',
};

/**
 * Why a Task awaits a clinician again (its `statusReason`): something outside this service set it to be done (Task.status
 * ready, accepted, in progress) while it still awaited approval here, so no contraindication was checked and no order
 * written (fhir-profiles' CodeSystem).
 */
export const APPROVED_OUTSIDE: Coding = {
  system: TASK_STATE_SYSTEM,
  code: 'approved-outside',
  display: 'Returned for approval: it was set to be done outside ketamine-careplans, without its checks or order',
};

/** The Task.status values that say a Task is to be done (an EHR acting on it), as opposed to awaiting or closed. */
export const TO_BE_DONE: readonly Task['status'][] = ['requested', 'received', 'accepted', 'ready', 'in-progress'];

/**
 * The Task.status values of a Task still open, whoever set them: as written here (draft, ready, on-hold) and as an EHR
 * carries a Task through FHIR's workflow (accepted, in-progress...). What every search for open Tasks asks for (since
 * session 46; before, `draft,ready,on-hold`, so a session the EHR set in progress was never answered by its infusion).
 */
export const OPEN_STATUSES: readonly Task['status'][] = ['draft', ...TO_BE_DONE, 'on-hold'];

/** OPEN_STATUSES as a search's `status` value. */
export const OPEN_STATUS_SEARCH = OPEN_STATUSES.join(',');

/** TO_BE_DONE as a search's `status` value: approved Tasks, whatever the EHR has made of them since. */
export const TO_BE_DONE_SEARCH = TO_BE_DONE.join(',');

/** The Task.status values an EHR closes a Task with (R4's entered-in-error aside: a record, not a closing). */
export const CLOSED_BY_EHR: readonly Task['status'][] = ['completed', 'cancelled', 'rejected', 'failed'];

const OPEN: readonly TaskState[] = ['awaiting-approval', 'approved', 'rescheduled', 'overdue'];

/** Which states each event may leave from. Anything else is an invalid transition (HTTP 409). */
const ALLOWED_FROM: Record<TaskEvent, readonly TaskState[]> = {
  approve: ['awaiting-approval', 'overdue'],
  reschedule: OPEN,
  reject: OPEN,
  complete: OPEN,
  supersede: OPEN,
  // Any open Task whose plan ended (revoked, completed, in error): approved ones with their orders (stopped-plans.ts).
  withdraw: OPEN,
  'mark-overdue': ['awaiting-approval', 'approved', 'rescheduled'],
  // Who is to do it: any open Task, approved or not; its state and status stay as they are.
  assign: OPEN,
  // Another dose for an approved session not given yet (its order replaced); state and status stay as they are.
  'change-dose': ['approved', 'rescheduled', 'overdue'],
  // An approved session whose order the EHR closed, nothing in its place: awaiting a clinician again (draft).
  'return-for-review': ['approved', 'rescheduled', 'overdue'],
  // Set to be done outside this service while it awaited approval here (approvedOutside): draft again.
  'return-unapproved': ['awaiting-approval'],
  // Its window moved outside this service (windowMovedOutside): followed, whatever its state; its status stays.
  'follow-window': OPEN,
  // Done or superseded by an infusion recorded in error since, when a clinician plans again without it (it is proposed
  // again as a new Task): what this record says happened did not.
  'record-in-error': ['done', 'superseded'],
};

const NOT_APPROVED_YET = 'It is not approved yet: approve it at the dose you want';

export class InvalidTransition extends Error {
  constructor(
    readonly from: TaskState | undefined,
    readonly event: TaskEvent,
    message: string,
  ) {
    super(message);
  }
}

/** The state a Task is in, from its businessStatus (and, for Tasks written by others, its status). */
export function stateOf(task: Task): TaskState | undefined {
  const code = task.businessStatus?.coding?.find((c) => c.system === TASK_STATE_SYSTEM)?.code;
  if (code && (TASK_STATES as readonly string[]).includes(code)) return code as TaskState;
  return undefined;
}

/** The id of the patient a Task is for (`for: Patient/<id>`); undefined for anything else. */
export function patientIdOf(task: Task): string | undefined {
  return /^Patient\/([^/]+)$/.exec(task.for?.reference ?? '')?.[1];
}

export function isOpen(task: Task): boolean {
  const state = stateOf(task);
  return state !== undefined && OPEN.includes(state);
}

/**
 * True when a clinician approved it: the only Tasks an EHR may act on (status ready, or any status it carries a Task on
 * with: accepted, in progress...; since session 46, before only ready, so a session the EHR set in progress lost its
 * reminders and was never answered by its infusion). Not one set to be done outside this service while it awaited
 * approval here (approvedOutside): since session 43; before, approving such a Task took it for one approved already,
 * whose order was written, and wrote none (clinic day in CI: an approved session with no order to give).
 */
export function isApproved(task: Task): boolean {
  return TO_BE_DONE.includes(task.status) && !approvedOutside(task);
}

/**
 * Awaiting a clinician's decision, overdue or not (status draft); also one set to be done outside this service while it
 * awaited approval here (approvedOutside): nobody approved it, whatever its status says (since session 43: the sweep
 * failed whole trying to return such a Task for review as an approved session, clinic day big seed 5054).
 */
export function isAwaitingApproval(task: Task): boolean {
  return isOpen(task) && (task.status === 'draft' || approvedOutside(task));
}

/** A new Task, as generated: awaiting approval, not yet ready. */
export function awaitingApproval(): Pick<Task, 'status' | 'intent' | 'businessStatus'> {
  return { status: 'draft', intent: 'plan', businessStatus: businessStatus('awaiting-approval') };
}

export interface TransitionInput {
  event: TaskEvent;
  now: Date;
  /** reject, supersede, withdraw, return-for-review: why (Task.statusReason). */
  reason?: string;
  /** approve, reschedule: who owns it from now on (unchanged when absent); assign: the new owner, absent for none. */
  owner?: Task['owner'];
  /** reschedule: the new due window (the caller checks it lies within the protocol's window). */
  window?: Period;
  /** complete, supersede: what fulfilled it (the infusion Procedure). */
  output?: Reference;
}

/** The Task after an event. Pure; throws InvalidTransition when the event is not allowed from the Task's state. */
export function transition(task: Task, input: TransitionInput): Task {
  const from = stateOf(task);
  const { event, now } = input;
  if (!from || !ALLOWED_FROM[event].includes(from)) {
    const why = event === 'change-dose' && task.status === 'draft' ? NOT_APPROVED_YET : undefined;
    throw new InvalidTransition(from, event, why ?? `Cannot ${event} a Task that is ${from ?? task.status}`);
  }
  if (event === 'mark-overdue' && !hasEnded(task, now)) {
    throw new InvalidTransition(from, event, 'The Task is not overdue: its window has not ended');
  }
  const base: Task = { ...task, lastModified: now.toISOString() };
  switch (event) {
    case 'approve':
      return {
        ...withoutReturnReason(base),
        status: 'ready',
        businessStatus: businessStatus('approved'),
        owner: input.owner ?? task.owner,
      };
    case 'reschedule': {
      if (!input.window) throw new InvalidTransition(from, event, 'A reschedule needs the new window');
      // A new window: why the old one was void (its appointment cancelled) no longer holds.
      const { statusReason: _void, ...rest } = base;
      return withWindow(
        { ...rest, status: 'ready', businessStatus: businessStatus('rescheduled'), owner: input.owner ?? task.owner },
        input.window,
      );
    }
    case 'reject':
      return {
        ...base,
        status: 'rejected',
        businessStatus: businessStatus('rejected'),
        statusReason: text(input.reason),
      };
    case 'complete':
      return {
        ...base,
        status: 'completed',
        businessStatus: businessStatus('done'),
        executionPeriod: { ...task.executionPeriod, end: task.executionPeriod?.end ?? now.toISOString() },
        output: withOutput(task, 'fulfilled-by', input.output),
      };
    case 'supersede':
      return {
        ...base,
        status: 'cancelled',
        businessStatus: businessStatus('superseded'),
        statusReason: text(input.reason ?? 'Superseded'),
        output: withOutput(task, 'superseded-by', input.output),
      };
    case 'withdraw':
      return {
        ...base,
        status: 'cancelled',
        businessStatus: businessStatus('withdrawn'),
        statusReason: text(input.reason ?? 'Its plan was stopped'),
      };
    case 'mark-overdue':
      // Status stays draft or ready: whether it was approved is not lost.
      return { ...base, businessStatus: businessStatus('overdue') };
    case 'assign': {
      const { owner: _previous, ...rest } = base;
      return input.owner ? { ...rest, owner: input.owner } : rest;
    }
    case 'change-dose':
      // Only an order still to be given is replaced: approved (ready), not awaiting approval nor held.
      if (task.status !== 'ready')
        throw new InvalidTransition(
          from,
          event,
          task.status === 'on-hold'
            ? 'Its order is on hold for a contraindication: override it (or reject the task) first'
            : NOT_APPROVED_YET,
        );
      // The Task itself says nothing of the dose (its order does): the write bumps its version, the decision's lock.
      return base;
    case 'return-for-review':
      // Approved (ready or carried on in the EHR, or held with its order): nothing else has an order it could close.
      if (!isApproved(task) && task.status !== 'on-hold')
        throw new InvalidTransition(from, event, 'It is not approved: it awaits a clinician already');
      // Draft again, so an EHR reading Task.status no longer acts on it; overdue stays overdue.
      return {
        ...base,
        status: 'draft',
        businessStatus: businessStatus(from === 'overdue' ? 'overdue' : 'awaiting-approval'),
        statusReason: { coding: [ORDER_CLOSED_IN_EHR], text: input.reason ?? ORDER_CLOSED_IN_EHR.display },
      };
    case 'return-unapproved':
      if (!approvedOutside(task))
        throw new InvalidTransition(from, event, 'It was not set to be done outside: it awaits a clinician already');
      // Draft again, so an EHR reading Task.status does not act on an approval nobody made here.
      return {
        ...base,
        status: 'draft',
        statusReason: { coding: [APPROVED_OUTSIDE], text: input.reason ?? APPROVED_OUTSIDE.display },
      };
    case 'follow-window': {
      // The window as moved, now the one set here. Overdue no more once it ends later than now: an approved one is
      // approved for its new window (as a reschedule says it), one awaiting approval awaits it still.
      const followed = withWindow(base, task.restriction?.period);
      if (from !== 'overdue' || hasEnded(task, now)) return followed;
      return {
        ...followed,
        businessStatus: businessStatus(task.status === 'draft' ? 'awaiting-approval' : 'rescheduled'),
      };
    }
    case 'record-in-error':
      // R4's entered-in-error: an EHR reading Task.status no longer counts the session as given (or as moot).
      return {
        ...base,
        status: 'entered-in-error',
        businessStatus: businessStatus('recorded-in-error'),
        statusReason: text(input.reason ?? DISPLAY['recorded-in-error']),
      };
  }
}

/** Returned for review because its order was closed in the EHR: `statusReason` says why. */
export function isReturnedForReview(task: Task): boolean {
  return Boolean(
    task.statusReason?.coding?.some(
      (c) => c.system === ORDER_CLOSED_IN_EHR.system && c.code === ORDER_CLOSED_IN_EHR.code,
    ),
  );
}

/**
 * Awaiting approval here (its businessStatus) while its status says it is to be done: an EHR (or a person in it) set
 * it ready, accepted or in progress itself, bypassing the approval, which checks contraindications and writes the order.
 */
export function approvedOutside(task: Task): boolean {
  return stateOf(task) === 'awaiting-approval' && TO_BE_DONE.includes(task.status);
}

/**
 * Closed by its Task.status (completed, cancelled, rejected, failed, entered in error), whatever its business state
 * says: an EHR closed it, and what the service writes leaves it as the EHR closed it.
 */
export function isClosedByStatus(task: Task): boolean {
  return CLOSED_BY_EHR.includes(task.status) || task.status === 'entered-in-error';
}

/**
 * Open as this service last wrote it (its business state), closed since by someone else setting Task.status alone (the
 * field an EHR reads): completed, cancelled, rejected or failed.
 */
export function isClosedElsewhere(task: Task): boolean {
  return isOpen(task) && CLOSED_BY_EHR.includes(task.status);
}

/**
 * An open Task whose due window someone outside this service moved (an EHR editing Task.restriction.period): its
 * reminders still time the window it had, and an overdue one may be due again. Not one closed by its status since (the
 * closing is what the service follows then).
 */
export function windowMovedOutside(task: Task): boolean {
  return isOpen(task) && !isClosedElsewhere(task) && windowDiffersFromSet(task);
}

/** Returned for approval because it was set to be done outside this service: `statusReason` says so. */
export function isReturnedUnapproved(task: Task): boolean {
  return Boolean(
    task.statusReason?.coding?.some((c) => c.system === APPROVED_OUTSIDE.system && c.code === APPROVED_OUTSIDE.code),
  );
}

/** Approved again: why it was returned for review (or for approval) no longer holds. */
function withoutReturnReason(task: Task): Task {
  if (!isReturnedForReview(task) && !isReturnedUnapproved(task)) return task;
  const { statusReason: _returned, ...rest } = task;
  return rest;
}

/** Whether an event is allowed now, for a UI that greys out buttons. */
export function canTransition(task: Task, event: TaskEvent): boolean {
  const from = stateOf(task);
  return from !== undefined && ALLOWED_FROM[event].includes(from);
}

export function hasEnded(task: Task, now: Date): boolean {
  const end = Date.parse(task.restriction?.period?.end ?? '');
  return Number.isFinite(end) && end < now.getTime();
}

export function businessStatus(state: TaskState): CodeableConcept {
  return { coding: [{ system: TASK_STATE_SYSTEM, code: state, display: DISPLAY[state] }], text: DISPLAY[state] };
}

function text(reason: string | undefined): CodeableConcept | undefined {
  return reason ? { text: reason } : undefined;
}

function withOutput(task: Task, kind: string, value: Reference | undefined): Task['output'] {
  if (!value) return task.output;
  return [...(task.output ?? []), { type: { text: kind }, valueReference: value }];
}
