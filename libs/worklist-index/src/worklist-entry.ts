import type { CarePlan, Task } from '@medplum/fhirtypes';
import { protocolActionOf, protocolPhaseOf, protocolWindowOf } from '@kc/protocols';
import {
  approvedOutside,
  isApproved,
  isOpen,
  isReturnedForReview,
  isReturnedUnapproved,
  isTaskHeldForContraindication,
  ordersApprovedOn,
  stateOf,
  TO_BE_DONE_SEARCH,
} from '@kc/task-states';

/** What a task list shows of a Task (overdue is computed when read: windows end as time passes). */
export interface WorklistEntry {
  id: string;
  versionId?: string;
  patient?: string;
  carePlan?: string;
  protocol?: string;
  kind?: string;
  /** The protocol action it came from (protocol-action extension): which reminders approving it writes. */
  action?: string;
  /** The treatment phase the Task belongs to (induction, maintenance), when it records one. */
  phase?: string;
  description?: string;
  /** Why it is proposed as it is (Task.reasonCode.text), e.g. a booster moved earlier by the patient's scores. */
  reason?: string;
  due?: { start?: string; end?: string };
  allowedWindow?: { start?: string; end?: string };
  businessStatus?: string;
  /**
   * An approved Task the EHR carries on (Task.status `in-progress`, `accepted`, `requested` or `received`: a nurse began
   * the session there): that status. Absent while it is `ready` as approved here.
   */
  ehrStatus?: string;
  /** Who is to do it (Task.owner), e.g. the clinician who took a check; absent: nobody yet. */
  owner?: { reference?: string; display?: string };
  /**
   * Approved, then held with its order for a contraindication found since (why): it needs a clinician again (an
   * override of the contraindication, or a rejection), so it is listed, but it cannot be approved.
   */
  onHold?: string;
  /**
   * What the clinic must do about an approved Task that is not held (its `statusReason`): its appointment was
   * cancelled in the scheduling system, book it again; or about one returned for review: its order was closed in the
   * EHR, approve it again or reject it.
   */
  attention?: string;
  /** The request the Task authorises (Task.focus), e.g. the proposed MedicationRequest: its dose is read from it. */
  request?: string;
  /**
   * The infusion a follow-up follows up (Task.reasonReference, `Procedure/<id>`): a post-infusion check outlives its
   * plan being stopped (carePlanHoldsTask).
   */
  infusion?: string;
  /** The EHR's orders the Task was approved on (Task.basedOn), when its approval wrote none: the to-do list reads them. */
  approvedOn?: string[];
}

/**
 * On the worklist: awaiting a clinician's decision, i.e. Task.status draft (libs/task-states), or approved and held
 * for a contraindication found since (status on-hold with this service's reason; not a hold somebody else placed).
 */
export function onWorklist(task: Task): boolean {
  return task.status === 'draft' || isTaskHeldForContraindication(task) || approvedOutside(task);
}

/**
 * Approved and not yet done: Task.status ready (approved or rescheduled, overdue or not), or carried on in the EHR
 * (accepted, in progress: since session 46), written by this service (its businessStatus): the clinic's work to carry
 * out, e.g. the post-infusion checks to make. A Task it leaves (completed, rejected, cancelled) leaves the list.
 */
export function onToDo(task: Task): boolean {
  // Not one set ready outside this service while it awaited approval here (isApproved; TasksChangedInEhr returns it).
  return isApproved(task) && isOpen(task);
}

/** A list of Tasks kept in due order in Redis (WorklistIndex): which Tasks belong, and how a rebuild finds them. */
export interface TaskList {
  /** Its keys under `<prefix>:worklist:` ('' for the worklist itself, whose keys predate the other lists). */
  keySpace: string;
  includes: (task: Task) => boolean;
  /** The Task.status values a rebuild searches the FHIR server for (`includes` then picks the list's Tasks). */
  statuses: string;
}

/** Awaiting a clinician's decision: `GET /worklist`. */
export const AWAITING_DECISION: TaskList = { keySpace: '', includes: onWorklist, statuses: 'draft,on-hold' };

/** Approved, to be done: `GET /to-do`. */
export const TO_DO: TaskList = { keySpace: 'to-do:', includes: onToDo, statuses: TO_BE_DONE_SEARCH };

export function carePlanOf(task: Task): string | undefined {
  return /^CarePlan\/([^/]+)$/.exec(
    task.basedOn?.find((b) => b.reference?.startsWith('CarePlan/'))?.reference ?? '',
  )?.[1];
}

/** The owner filter's value for Tasks nobody owns (no Task.owner). */
export const UNASSIGNED = '-';

/** Task.owner's reference (Practitioner/123), if it has one. */
export function ownerOf(task: Task): string | undefined {
  return task.owner?.reference || undefined;
}

/** The Task's kind: its code (this service's CodeSystem), e.g. post-infusion-check. */
export function kindOf(task: Task): string | undefined {
  return task.code?.coding?.[0]?.code;
}

export function protocolOf(carePlan: CarePlan): string | undefined {
  return carePlan.instantiatesCanonical?.[0];
}

export function toEntry(task: Task, protocol: string | undefined): WorklistEntry {
  const carePlan = carePlanOf(task);
  return {
    id: task.id!,
    versionId: task.meta?.versionId,
    patient: task.for?.reference,
    carePlan: carePlan ? `CarePlan/${carePlan}` : undefined,
    protocol,
    kind: kindOf(task),
    action: protocolActionOf(task),
    phase: protocolPhaseOf(task),
    description: task.description,
    reason: task.reasonCode?.text,
    due: task.restriction?.period,
    allowedWindow: protocolWindowOf(task),
    businessStatus: task.businessStatus?.coding?.[0]?.code,
    ...(isApproved(task) && task.status !== 'ready' ? { ehrStatus: task.status } : {}),
    owner: task.owner && { reference: task.owner.reference, display: task.owner.display },
    onHold: isTaskHeldForContraindication(task) ? (task.statusReason?.text ?? 'On hold') : undefined,
    attention:
      isApproved(task) || isReturnedForReview(task) || isReturnedUnapproved(task) ? task.statusReason?.text : undefined,
    request: task.focus?.reference,
    infusion: task.reasonReference?.reference?.startsWith('Procedure/') ? task.reasonReference.reference : undefined,
    ...(ordersApprovedOn(task).length ? { approvedOn: ordersApprovedOn(task) } : {}),
  };
}

const MISSING = 'zzzzzzzzzzzzz';

function instantKey(value: string | undefined): string {
  const ms = Date.parse(value ?? '');
  if (!Number.isFinite(ms)) return MISSING;
  return String(Math.max(0, ms)).padStart(13, '0');
}

/**
 * The sorted-set member of a worklist entry: `<due start>|<due end>|<id>|<overdue flag>`, instants as 13-digit
 * epoch milliseconds (a missing one sorts last). Lexicographic order is the worklist's order: soonest due start,
 * then soonest end, then id; and the due and overdue filters can be decided from the member alone.
 */
export function memberOf(task: Task): string {
  const period = task.restriction?.period;
  const overdueFlag = stateOf(task) === 'overdue' ? '1' : '0';
  return `${instantKey(period?.start)}|${instantKey(period?.end)}|${task.id}|${overdueFlag}`;
}

export interface ParsedMember {
  start?: number;
  end?: number;
  id: string;
  markedOverdue: boolean;
}

export function parseMember(member: string): ParsedMember | undefined {
  const match = /^(\d{13}|z{13})\|(\d{13}|z{13})\|([A-Za-z0-9\-.]{1,64})\|([01])$/.exec(member);
  if (!match) return undefined;
  return {
    start: match[1] === MISSING ? undefined : Number(match[1]),
    end: match[2] === MISSING ? undefined : Number(match[2]),
    id: match[3],
    markedOverdue: match[4] === '1',
  };
}

/** The lowest member whose due start is after the instant: `(` + this bounds "due start <= instant". */
export function startBound(instant: Date): string {
  return String(Math.max(0, instant.getTime() + 1)).padStart(13, '0');
}

export function isOverdue(member: ParsedMember, now: Date): boolean {
  return member.markedOverdue || (member.end !== undefined && member.end < now.getTime());
}
