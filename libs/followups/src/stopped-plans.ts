import type {
  CarePlan,
  CommunicationRequest,
  MedicationAdministration,
  Procedure,
  Reference,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import {
  cancelledProposal,
  isAwaitingApproval,
  isOpen,
  isOpenOrder,
  orderAnsweredBy,
  sessionBegunBy,
  stateOf,
  transition,
  type AuthorisableRequest,
  openOrdersOfSession,
  type OpenOrder,
} from '@kc/task-states';
import { carePlanHoldsCare, carePlanReferenceOf, dueAfterPlanEnd } from './care-plan-state';
import { carePlanHoldsTask } from './checks-outlive-their-plan';
import { infusionThatGave } from './crossed-closings';
import { remindersEndedBy, remindersRevokedFor } from './reminders';
import { answeredByInfusion, applyInfusionUpdate } from './superseded';

export interface Withdrawal {
  /** The Task as read (its version is the If-Match of the write). */
  task: Task;
  withdrawn: Task;
  /** Its draft proposal, as read and cancelled. */
  proposal?: { read: AuthorisableRequest; cancelled: AuthorisableRequest };
  /** An approved Task's order still to be given (active, or held), as read and cancelled: never to be given now. */
  order?: { read: AuthorisableRequest; cancelled: AuthorisableRequest };
  /** The EHR's replacements of that order it left open beside it (OpenOrder.leftOpen), cancelled with it. */
  replacements?: { read: AuthorisableRequest; cancelled: AuthorisableRequest }[];
  /** Its reminders not sent yet, as read and revoked. */
  reminders: { read: CommunicationRequest; revoked: CommunicationRequest }[];
}

/** The requests a withdrawal changes, each with the version it was read at (its If-Match). */
export function requestWrites(
  w: Pick<Withdrawal, 'proposal' | 'order' | 'replacements' | 'reminders'>,
): { resource: Resource; read: Resource }[] {
  return [
    ...(w.proposal ? [{ resource: w.proposal.cancelled, read: w.proposal.read }] : []),
    ...(w.order ? [{ resource: w.order.cancelled, read: w.order.read }] : []),
    ...(w.replacements ?? []).map((r) => ({ resource: r.cancelled, read: r.read })),
    ...w.reminders.map((r) => ({ resource: r.revoked, read: r.read })),
  ];
}

/** What closing a session the pump gave writes: its open orders completed, its reminders revoked. */
export interface GivenSessionChanges {
  orders: { read: AuthorisableRequest; written: AuthorisableRequest }[];
  /** Its reminders not sent yet, as read and revoked. */
  reminders: { read: CommunicationRequest; revoked: CommunicationRequest }[];
}

/** A session the pump gave, closed as given by `by` (the infusion, or the pump's record): what it writes. */
export function givenSessionChanges(
  task: Task,
  orders: AuthorisableRequest[],
  by: Reference,
  reminders: CommunicationRequest[],
): GivenSessionChanges {
  const revoked = remindersEndedBy([{ task, outcome: 'done', by }], reminders);
  return {
    orders: orders.map((order) => ({ read: order, written: orderAnsweredBy(order, 'done', by) })),
    reminders: reminders.flatMap((read) => {
      const written = revoked.find((r) => r.id === read.id);
      return written ? [{ read, revoked: written }] : [];
    }),
  };
}

/** Those changes as writes, each with the version it was read at (its If-Match). */
export function givenSessionWrites(g: GivenSessionChanges): { resource: Resource; read: Resource }[] {
  return [
    ...g.orders.map((o) => ({ resource: o.written, read: o.read })),
    ...g.reminders.map((r) => ({ resource: r.revoked, read: r.read })),
  ];
}

/** The pump's record showing it has begun (or given) any of a session's open orders. */
export function sessionBegunAtThePump(open: OpenOrder | undefined): boolean {
  return openOrdersOfSession(open).some((o) => sessionBegunBy(o.administrations));
}

/** The pump's record showing it has given any of a session's open orders (completed). */
export function sessionGivenAtThePump(open: OpenOrder | undefined): boolean {
  return openOrdersOfSession(open).some((o) => o.administrations.some((a) => a.status === 'completed'));
}

/** The approved Tasks (ready, or held) of plans that are over: those whose orders the sweep reads before withdrawing. */
export function approvedOnEndedPlans(
  tasks: Task[],
  carePlans: Map<string, CarePlan>,
  zone?: string,
  deceased?: ReadonlySet<string>,
): Task[] {
  return tasks.filter((task) => !isAwaitingApproval(task) && endedPlanOf(task, carePlans, zone, deceased));
}

/**
 * The patients (`Patient/<id>`) of the post-infusion checks that outlive their plans (carePlanHoldsTask): the ones to
 * read, whether any is recorded as deceased (their checks are withdrawn then). None in most reads.
 */
export function patientsKeepingChecks(tasks: Task[], carePlans: Map<string, CarePlan>): string[] {
  const keeping = tasks.filter((task) => {
    const ref = carePlanReferenceOf(task);
    const carePlan = ref ? carePlans.get(ref) : undefined;
    return isOpen(task) && carePlan && !carePlanHoldsCare(carePlan).ok && carePlanHoldsTask(carePlan, task).ok;
  });
  return [
    ...new Set(keeping.flatMap((t) => (/^Patient\/[^/]+$/.test(t.for?.reference ?? '') ? [t.for!.reference!] : []))),
  ];
}

/**
 * The open Tasks of plans that are over (CarePlan revoked, completed or entered in error), withdrawn with why: nobody
 * may approve or give them any more, so they leave the worklist and the to-do list. Not a post-infusion check of a plan
 * stopped or completed (carePlanHoldsTask: since session 52 it outlives its plan, the infusion having been given).
 * - Awaiting approval: their draft proposals cancelled.
 * - Approved (ready, or held for a contraindication): their orders still to be given cancelled, so an EHR reading
 *   MedicationRequest.status finds no ketamine order under a stopped plan (before session 28 they stayed active, "the
 *   clinician's or the EHR's to stop"). One whose session the pump has begun is left to its infusion.
 * Their reminders not sent yet are revoked. A paused plan (on-hold) keeps its Tasks and orders. Since session 48, so are
 * the sessions of a plan that would begin after its end (dueAfterPlanEnd: the EHR set `CarePlan.period.end`, maybe
 * after they were proposed or approved). Pure: the worker reads the Tasks with their CarePlans, proposals, orders (with
 * their administrations) and the plans' reminders.
 */
export function withdrawalsForStoppedPlans(input: {
  tasks: Task[];
  carePlans: Map<string, CarePlan>;
  proposals: Map<string, AuthorisableRequest>;
  /** The approved Tasks' orders still to be given, by Task id (approvedOnEndedPlans says whose to read). */
  orders?: Map<string, OpenOrder>;
  /** The ended plans' reminders, any Task's (those about each Task are revoked with it). */
  reminders?: CommunicationRequest[];
  now: Date;
  /** The clinic's time zone: a plan's end given as a day is the whole of it there. */
  zone?: string;
  /** Patients recorded as deceased (`Patient/<id>`): their post-infusion checks are withdrawn with the rest. */
  deceased?: ReadonlySet<string>;
}): Withdrawal[] {
  return input.tasks.flatMap((task) => {
    const ended = endedPlanOf(task, input.carePlans, input.zone, input.deceased);
    if (!ended) return [];
    const open = task.id ? input.orders?.get(task.id) : undefined;
    // The pump has started the session (or given it): its order is the infusion's to close, not the plan's.
    if (sessionBegunAtThePump(open)) return [];
    const reason = `Withdrawn: ${ended.reason}`;
    return [
      {
        task,
        withdrawn: transition(task, { event: 'withdraw', now: input.now, reason }),
        ...requestsWithdrawn(task, reason, {
          proposal: task.focus?.reference ? input.proposals.get(task.focus.reference) : undefined,
          open,
          reminders: input.reminders ?? [],
        }),
      },
    ];
  });
}

/**
 * What withdrawing an open Task cancels with it: awaiting approval, its draft proposal; approved, its order still to
 * be given (the caller has left out one whose session the pump has begun); and its reminders not sent. Pure.
 */
export function requestsWithdrawn(
  task: Task,
  reason: string,
  of: { proposal?: AuthorisableRequest; open?: OpenOrder; reminders: CommunicationRequest[] },
): Pick<Withdrawal, 'proposal' | 'order' | 'replacements' | 'reminders'> {
  const { proposal, open } = of;
  return {
    proposal:
      isAwaitingApproval(task) && proposal && proposal.status === 'draft'
        ? { read: proposal, cancelled: cancelledProposal(proposal, reason) }
        : undefined,
    order:
      open && !isAwaitingApproval(task)
        ? { read: open.order, cancelled: cancelledProposal(open.order, reason) }
        : undefined,
    replacements:
      open && !isAwaitingApproval(task)
        ? (open.leftOpen ?? []).map((r) => ({ read: r.order, cancelled: cancelledProposal(r.order, reason) }))
        : [],
    reminders: remindersRevokedFor(task, of.reminders, reason),
  };
}

/**
 * An approved session of a plan that is over, which the pump gave during an infusion on record: answered as that
 * infusion's follow-up answers a session under a stopped plan.
 */
export interface GivenOnStoppedPlan extends GivenSessionChanges {
  task: { read: Task; written: Task };
  /** The pump's record that gave it, and the infusion it is part of. */
  administration: MedicationAdministration;
  infusion: Reference;
}

/**
 * The approved sessions of plans that are over (withdrawalsForStoppedPlans leaves them to their infusion) which the
 * pump gave (a completed administration of one of their open orders) during an infusion of their plan on record:
 * done by that infusion, their open orders completed and their reminders not sent revoked, as the infusion's
 * follow-up answers them under a stopped plan. The follow-up does so when the pump's record is there before it runs;
 * one the eMAR charted after it left the session approved and its order active after the drug went in, to be given
 * again (session 41; clinic day, seed 1618). A session the pump is still running, or whose infusion is not recorded
 * yet (its follow-up will answer it), is left. Pure: `infusions` are the plans' completed Procedures.
 */
export function sessionsGivenOnStoppedPlans(input: {
  tasks: Task[];
  carePlans: Map<string, CarePlan>;
  orders: Map<string, OpenOrder>;
  infusions: Procedure[];
  reminders?: CommunicationRequest[];
  now: Date;
  zone?: string;
}): GivenOnStoppedPlan[] {
  return input.tasks.flatMap((task) => {
    const open = task.id ? input.orders.get(task.id) : undefined;
    if (!endedPlanOf(task, input.carePlans) || isAwaitingApproval(task)) return [];
    const plan = carePlanReferenceOf(task);
    const orders = openOrdersOfSession(open).filter((o) => isOpenOrder(o.order));
    const ofPlan = input.infusions.filter((p) => p.basedOn?.some((r) => r.reference === plan));
    const given = orders
      .flatMap((o) => o.administrations)
      .filter((a) => a.status === 'completed')
      .map((administration) => ({ administration, infusion: infusionThatGave(administration, ofPlan) }))
      .find((g) => g.infusion);
    if (!given?.infusion?.id) return [];
    const { start, end } = given.infusion.performedPeriod ?? {};
    const by = answeredByInfusion(given.infusion.id, Date.parse(end ?? start ?? ''), input.zone);
    return [
      {
        task: { read: task, written: applyInfusionUpdate({ task, outcome: 'done', by }, input.now) },
        ...givenSessionChanges(
          task,
          orders.map((o) => o.order),
          by,
          input.reminders ?? [],
        ),
        administration: given.administration,
        infusion: by,
      },
    ];
  });
}

/** Why a session is withdrawn when its plan ends before it begins (the EHR set `CarePlan.period.end`). */
const AFTER_PLAN_END = 'it would begin after its plan ends';

/** A session withdrawn because its plan ended before it began (its reason, as written below): proposed again if the end moves. */
export function isWithdrawnForPlanEnd(task: Task): boolean {
  return stateOf(task) === 'withdrawn' && (task.statusReason?.text ?? '').startsWith(`Withdrawn: ${AFTER_PLAN_END} (`);
}

/** Why an open Task's plan is over for it: the plan stopped, or, for a session, the plan ending before it begins. */
function endedPlanOf(
  task: Task,
  carePlans: Map<string, CarePlan>,
  zone?: string,
  deceased?: ReadonlySet<string>,
): { reason: string } | undefined {
  if (!isOpen(task)) return undefined;
  const carePlanRef = carePlanReferenceOf(task);
  const carePlan = carePlanRef ? carePlans.get(carePlanRef) : undefined;
  // A post-infusion check outlives its plan stopped or completed (carePlanHoldsTask), not its patient.
  const patientDeceased = deceased?.has(task.for?.reference ?? '');
  const holds = carePlan && (patientDeceased ? carePlanHoldsCare(carePlan) : carePlanHoldsTask(carePlan, task));
  if (holds && !holds.ok && holds.closed) return { reason: holds.reason };
  const session = task.focus?.reference?.startsWith('MedicationRequest/');
  return carePlan && session && dueAfterPlanEnd(carePlan, task.restriction?.period, zone)
    ? { reason: `${AFTER_PLAN_END} (${carePlan.period!.end})` }
    : undefined;
}
