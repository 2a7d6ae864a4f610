import type { CommunicationRequest, MedicationAdministration, Period, Task, TaskRestriction } from '@medplum/fhirtypes';
import {
  APPLY_KEY_SYSTEM,
  clinicDay,
  notBefore,
  periodUnion,
  PROTOCOL_WINDOW_EXTENSION,
  stripUndefined,
  TASK_KEY_SYSTEM,
  tasksOfInfusion,
  uuidFromKey,
} from '@kc/protocols';
import {
  awaitingApproval,
  cancelledProposal,
  isClosedByStatus,
  isOpen,
  sessionBegunBy,
  stateOf,
  transition,
  type AuthorisableRequest,
  type OpenOrder,
  withWindow,
} from '@kc/task-states';
import { carePlanReferenceOf } from './care-plan-state';
import { requestsWithdrawn, sessionBegunAtThePump, type Withdrawal } from './stopped-plans';

/**
 * What a clinician's "plan again without it" does to a plan whose infusion the EHR recorded in error (or deleted) after
 * its follow-ups were written (the `infusion-recorded-in-error` issue): the plan as if that infusion had not happened.
 * Before session 41 the clinician could only put it right by hand, and a session the infusion had closed could not be
 * proposed again (done is final), so the patient's series was a session short.
 */
export interface Replan {
  /** Open Tasks the infusion planned (its check, the next session or booster timed from it), withdrawn with their requests. */
  withdrawn: Withdrawal[];
  /** Open Tasks it planned whose session the pump has begun: real sessions, left to their infusion. */
  begun: Task[];
  /** Tasks it closed (done, or superseded as moot), now `entered-in-error`, and the orders it completed, cancelled. */
  inError: {
    task: { read: Task; written: Task };
    orders: { read: AuthorisableRequest; written: AuthorisableRequest }[];
  }[];
  /** Each of those proposed again: a new Task awaiting approval (with a copy of its proposal), in a window to come. */
  proposedAgain: ProposedAgain[];
  /** Sessions it closed that the pump recorded giving: they happened, and stay done. */
  givenAtThePump: Task[];
}

export interface ProposedAgain {
  /** The Task it stands in for (now entered in error). */
  replaces: Task;
  task: Task;
  /** Where the transaction puts it (a urn:uuid from its key, so a retry names the same). */
  fullUrl: string;
  proposal?: { resource: AuthorisableRequest; fullUrl: string };
}

export interface ReplanInput {
  /** The infusion recorded in error. */
  procedureId: string;
  /** When it was performed, as recorded (the words of what is proposed again). */
  performed?: Period;
  /** Every Task of its plan. */
  tasks: Task[];
  /** The Tasks' proposals (their `focus`), by reference. */
  proposals: Map<string, AuthorisableRequest>;
  /** The open orders (with what the pump recorded of them) of the approved Tasks it planned, by Task id. */
  openOrders: Map<string, OpenOrder>;
  /**
   * The orders of the sessions it closed, by Task id, any status, whoever wrote them (written here, the EHR's it was
   * approved on, the EHR's replacements of those), with the pump's records of them.
   */
  closedOrders: Map<string, { orders: AuthorisableRequest[]; administrations: MedicationAdministration[] }>;
  /** The plan's reminders not sent yet. */
  reminders: CommunicationRequest[];
  now: Date;
  zone?: string;
}

/** Pure: the caller reads the plan's Tasks with their proposals, orders and reminders, and writes the result at once. */
export function replanWithoutInfusion(input: ReplanInput): Replan {
  const { procedureId, now } = input;
  const { planned, answered } = tasksOfInfusion(procedureId, input.tasks);
  const day = clinicDay(input.performed?.end ?? input.performed?.start, input.zone);
  const infusion = `the infusion Procedure/${procedureId}${day ? ` of ${day}` : ''}`;

  const withdrawReason = `Withdrawn: it was planned from ${infusion}, recorded in error`;
  // Open here, and not closed by the EHR (its status): the EHR's closing stands (clinic day big seed 5082: a session
  // the EHR completed was withdrawn, cancelled).
  const stillOpen = planned.filter((t) => isOpen(t) && !isClosedByStatus(t));
  const begun = stillOpen.filter((t) => sessionBegunAtThePump(t.id ? input.openOrders.get(t.id) : undefined));
  const withdrawn = stillOpen
    .filter((t) => !begun.includes(t))
    .map((task) => ({
      task,
      withdrawn: transition(task, { event: 'withdraw', now, reason: withdrawReason }),
      ...requestsWithdrawn(task, withdrawReason, {
        proposal: task.focus?.reference ? input.proposals.get(task.focus.reference) : undefined,
        open: task.id ? input.openOrders.get(task.id) : undefined,
        reminders: input.reminders,
      }),
    }));

  const closed = answered.filter((t) => stateOf(t) === 'done' || stateOf(t) === 'superseded');
  const givenAtThePump = closed.filter((t) => givenAtThePumpUnder(t, input));
  const undone = closed.filter((t) => !givenAtThePump.includes(t));
  const inErrorReason = `Recorded in error: ${infusion}, which closed it, was recorded in error; proposed again`;
  const inError = undone.map((task) => ({
    task: { read: task, written: transition(task, { event: 'record-in-error', now, reason: inErrorReason }) },
    orders: (input.closedOrders.get(task.id!)?.orders ?? [])
      .filter((o) => o.status === 'completed')
      .map((read) => ({
        read,
        written: cancelledProposal(read, `Not given: ${infusion}, which completed it, was recorded in error`),
      })),
  }));
  const proposedAgain = undone.map((task) => proposeAgain(task, input, infusion));
  return { withdrawn, begun, inError, proposedAgain, givenAtThePump };
}

/** A Task the infusion closed, proposed again (taskProposedAgain) under a key naming the infusion. */
function proposeAgain(task: Task, input: ReplanInput, infusion: string): ProposedAgain {
  return taskProposedAgain(task, {
    key: `${carePlanReferenceOf(task)?.slice('CarePlan/'.length) ?? ''}:in-error-${input.procedureId}:${task.id}`,
    reason: `Proposed again: ${infusion}, which closed it, was recorded in error`,
    proposal: task.focus?.reference ? input.proposals.get(task.focus.reference) : undefined,
    now: input.now,
  });
}

/**
 * A Task proposed again as it was proposed (its action, its proposal's dose), awaiting approval, under `key` (the
 * Task's and its proposal's identifiers, and their urn:uuids, so a retry names the same): in its own window while that
 * has not ended, else in a window as long from now (as a Task is never due before it is created). Its protocol window
 * grows to hold it, so a clinician may reschedule within either. For a session an infusion in error closed ($replan),
 * and since session 50 for one withdrawn because its plan ended before it, the end since moved later.
 */
export function taskProposedAgain(
  task: Task,
  { key, reason, proposal: read, now }: { key: string; reason: string; proposal?: AuthorisableRequest; now: Date },
): ProposedAgain {
  const fullUrl = `urn:uuid:${uuidFromKey(`task|${key}`)}`;
  const proposal = read && {
    resource: {
      ...withoutRecord(read),
      status: 'draft',
      identifier: [{ system: APPLY_KEY_SYSTEM, value: key }],
      authoredOn: now.toISOString(),
    } as AuthorisableRequest,
    fullUrl: `urn:uuid:${uuidFromKey(`request|${key}`)}`,
  };
  const window = windowAgain(task.restriction, now);
  const {
    output: _output,
    executionPeriod: _execution,
    statusReason: _reason,
    businessStatus: _state,
    ...rest
  } = withoutRecord(task);
  const again: Task = withWindow(
    {
      ...rest,
      ...awaitingApproval(),
      identifier: [{ system: TASK_KEY_SYSTEM, value: key }],
      statusReason: { text: reason },
      authoredOn: now.toISOString(),
      lastModified: now.toISOString(),
      focus: proposal ? { reference: proposal.fullUrl } : undefined,
      extension: (task.extension ?? []).map((e) =>
        e.url === PROTOCOL_WINDOW_EXTENSION && e.valuePeriod && window
          ? { ...e, valuePeriod: periodUnion(e.valuePeriod, window) }
          : e,
      ),
    },
    window,
  );
  return { replaces: task, task: stripUndefined(again), fullUrl, proposal };
}

/** The creates of Tasks proposed again: each proposal, then its Task, at their urn:uuids (the Task names its proposal). */
export function proposedAgainEntries(
  proposedAgain: ProposedAgain[],
): { fullUrl: string; resource: Task | AuthorisableRequest; request: { method: 'POST'; url: string } }[] {
  return proposedAgain.flatMap((p) => [
    ...(p.proposal
      ? [
          {
            fullUrl: p.proposal.fullUrl,
            resource: p.proposal.resource,
            request: { method: 'POST' as const, url: p.proposal.resource.resourceType },
          },
        ]
      : []),
    { fullUrl: p.fullUrl, resource: p.task, request: { method: 'POST' as const, url: 'Task' } },
  ]);
}

function windowAgain(restriction: TaskRestriction | undefined, now: Date): Period | undefined {
  const period = restriction?.period;
  if (!period?.start || !period.end) return period;
  return notBefore(period, now.getTime());
}

/**
 * A session closed by the infusion that the pump recorded begun or given under one of its orders (written here, or the
 * EHR's: before session 42 only those written here were looked at): it happened after all.
 */
function givenAtThePumpUnder(task: Task, input: ReplanInput): boolean {
  return Boolean(sessionBegunBy(input.closedOrders.get(task.id!)?.administrations ?? []));
}

/** A resource as a new one: no id, no server metadata. */
function withoutRecord<T extends { id?: string; meta?: unknown }>(resource: T): Omit<T, 'id' | 'meta'> {
  const { id: _id, meta: _meta, ...rest } = resource;
  return rest;
}
