import type { Period, Task } from '@medplum/fhirtypes';
import {
  BUSINESS_STATUS,
  periodWithin,
  PROTOCOL_WINDOW_EXTENSION,
  SERVICE_CODE_SYSTEM,
  type BusinessStatus,
} from '@kc/protocols';

/** Why a decision cannot be taken; the HTTP layer turns it into 409 or 422. */
export class DecisionRefused extends Error {
  constructor(
    readonly kind: 'already-decided' | 'outside-window' | 'invalid',
    message: string,
  ) {
    super(message);
  }
}

export type Decision = 'approve' | 'reject' | 'reschedule';

/**
 * The clinician's decisions as pure functions of the Task: status says where the task is in FHIR's workflow
 * (requested -> accepted | rejected; intent never changes), businessStatus says what the clinic did.
 */
export function approve(task: Task, owner: Task['owner'], now: Date): Task {
  assertAwaitingDecision(task);
  return {
    ...task,
    status: 'accepted',
    businessStatus: business(BUSINESS_STATUS.approved, 'Approved'),
    owner: owner ?? task.owner,
    lastModified: now.toISOString(),
  };
}

export function reject(task: Task, reason: string, now: Date): Task {
  assertAwaitingDecision(task);
  return {
    ...task,
    status: 'rejected',
    businessStatus: business(BUSINESS_STATUS.rejected, 'Rejected'),
    statusReason: { text: reason },
    lastModified: now.toISOString(),
  };
}

/** Moves the due window, only inside the window the protocol allows (kept on the Task as an extension). */
export function reschedule(task: Task, period: Period, now: Date): Task {
  if (task.status !== 'requested' && task.status !== 'accepted')
    throw new DecisionRefused('already-decided', `Task is ${task.status}; only open tasks can be rescheduled`);
  const allowed = protocolWindow(task);
  if (!allowed) throw new DecisionRefused('invalid', 'Task has no protocol window to reschedule within');
  if (!periodWithin(period, allowed)) {
    throw new DecisionRefused(
      'outside-window',
      `The new window must lie within the protocol's window ${allowed.start} .. ${allowed.end}`,
    );
  }
  const stillOverdue =
    task.businessStatus?.coding?.some((c) => c.code === BUSINESS_STATUS.overdue) &&
    Date.parse(period.end!) < now.getTime();
  return {
    ...task,
    restriction: { ...task.restriction, period },
    // A rescheduled task is no longer overdue unless the new window has also passed.
    businessStatus: stillOverdue
      ? task.businessStatus
      : business(
          task.status === 'accepted' ? BUSINESS_STATUS.approved : BUSINESS_STATUS.awaitingApproval,
          task.status === 'accepted' ? 'Approved' : 'Awaiting clinician approval',
        ),
    lastModified: now.toISOString(),
  };
}

export function protocolWindow(task: Task): Period | undefined {
  return task.extension?.find((e) => e.url === PROTOCOL_WINDOW_EXTENSION)?.valuePeriod;
}

export function isOverdue(task: Task, now: Date): boolean {
  const end = task.restriction?.period?.end;
  return (
    task.businessStatus?.coding?.some((c) => c.code === BUSINESS_STATUS.overdue) === true ||
    (Boolean(end) && Date.parse(end!) < now.getTime())
  );
}

function assertAwaitingDecision(task: Task): void {
  if (task.status !== 'requested')
    throw new DecisionRefused('already-decided', `Task was already decided (status ${task.status})`);
}

function business(code: BusinessStatus, display: string) {
  return { coding: [{ system: SERVICE_CODE_SYSTEM, code, display }] };
}
