import { Injectable, Logger } from '@nestjs/common';
import type {
  BundleEntry,
  DetectedIssue,
  PlanDefinition,
  ProvenanceAgent,
  Reference,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { batchResult, FhirClient, getEntry, skipsStaleWrite, updateEntry, type RaceHandling } from '@kc/fhir';
import {
  contraindicationState,
  hasContraindicationChecks,
  howReleased,
  protocolActionOf,
  type DefinitionResolver,
} from '@kc/protocols';
import {
  changeProvenance,
  eachOrderOnce,
  heldTask,
  holdsToRestate,
  implicatingOrders,
  isApproved,
  isAuthorisable,
  isTaskHeldForContraindication,
  openOrdersOfSession,
  ordersToHold,
  ordersToRelease,
  otherIssuesNamed,
  releasedTask,
  THIS_SERVICE,
  TO_BE_DONE_SEARCH,
  withoutIssues,
  type AuthorisableRequest,
  type OpenOrder,
  type OrderHold,
} from '@kc/task-states';
import { openOrdersOfSessions } from './ehr-orders';

/** A plan with unresolved contraindications, and what is needed to find the orders they hold. */
export interface HoldCheck {
  carePlanId: string;
  /**
   * The plan's protocol: the orders of the actions its contraindication checks gate are held. None (its protocol is
   * not found): every approved order of the plan is, since none can be told apart.
   */
  protocol?: { plan: PlanDefinition; resolver: DefinitionResolver };
  /** The DetectedIssues implicating the plan (any state: the unresolved ones hold). */
  issues: DetectedIssue[];
  /** The plan's approved Tasks (status ready) when already read; read here otherwise. */
  approvedTasks?: Task[];
  /**
   * The plan's Tasks held for a contraindication already: their orders are held again by the issues unresolved now
   * where none of those names them (the issue that held them was deleted on the FHIR server).
   */
  heldTasks?: Task[];
}

/** What a hold wrote: the orders held, and the issues holding them (as written, implicating the orders). */
export interface HoldOutcome {
  held: number;
  issues: DetectedIssue[];
}

const NOTHING_HELD: HoldOutcome = { held: 0, issues: [] };

/**
 * A contraindication found after an order was approved (a pregnancy recorded the week before the third session)
 * puts the plan's active orders that a contraindication check gates on hold, with their approved Tasks, in one
 * transaction with the issue now implicating them and a Provenance naming this service; once a clinician's
 * overrides leave no contraindication on the plan unresolved, they are released, with a Provenance naming the
 * clinician. Orders and Tasks somebody else stopped or held are never touched. So an EHR, a pharmacy or a pump
 * integration reading only MedicationRequest.status or Task.status sees that nothing is to be given.
 */
@Injectable()
export class OrderHolds {
  private readonly logger = new Logger(OrderHolds.name);

  constructor(private readonly fhir: FhirClient) {}

  /**
   * The plan's active gated orders, held while any contraindication implicating the plan is unresolved. Answers how
   * many were held, and the issues as the hold wrote them (now implicating the orders: what the clinic is told of).
   * `raced: 'fail'` (a job told of a record): a hold that lost a race to a change made meanwhile fails, for the job to
   * run again; else nothing is held, for the next sweep.
   */
  async hold(check: HoldCheck, now = new Date(), raced: RaceHandling = 'skip'): Promise<HoldOutcome> {
    const { outcome, sessions } = await this.holdOnce(check, now, raced);
    if (!outcome.held) return outcome;
    const again = await this.crossedByTheEhr(check, sessions, now, raced);
    return again.held ? { held: outcome.held + again.held, issues: again.issues } : outcome;
  }

  /**
   * Once a hold has landed, the orders of the sessions it looked at read again (one batch): one still active is the
   * EHR's replacement of an order written between the hold's read and its write (its cancel of the order it replaced
   * never sent). Then the plan's Tasks and issues are read again and the hold looks once more, holding it. Since
   * session 57; before, it was left to give under the held session until the next sweep, which did not hold it either
   * (it held only approved sessions' orders).
   */
  private async crossedByTheEhr(
    check: HoldCheck,
    sessions: Task[],
    now: Date,
    raced: RaceHandling,
  ): Promise<HoldOutcome> {
    if (!ordersOfStatus(await openOrdersOfSessions(this.fhir, sessions), sessions, 'active').length)
      return NOTHING_HELD;
    const carePlan = `CarePlan/${check.carePlanId}`;
    const [tasks, issues] = await Promise.all([
      this.fhir.searchAll<Task>('Task', { 'based-on': carePlan, status: `${TO_BE_DONE_SEARCH},on-hold` }),
      this.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: carePlan }),
    ]);
    const approvedTasks = tasks.filter(isApproved);
    const heldTasks = tasks.filter(isTaskHeldForContraindication);
    return (await this.holdOnce({ ...check, issues, approvedTasks, heldTasks }, now, raced)).outcome;
  }

  /** The hold as the plan's records read: what it wrote, and the sessions whose orders it looked at. */
  private async holdOnce(
    check: HoldCheck,
    now: Date,
    raced: RaceHandling,
  ): Promise<{ outcome: HoldOutcome; sessions: Task[] }> {
    const carePlan = `CarePlan/${check.carePlanId}`;
    const unresolved = check.issues.filter(
      (i) => contraindicationState(i) === 'unresolved' && i.implicated?.some((r) => r.reference === carePlan),
    );
    if (!unresolved.length) return { outcome: NOTHING_HELD, sessions: [] };
    const approved =
      check.approvedTasks ??
      (await this.fhir.searchAll<Task>('Task', { 'based-on': carePlan, status: TO_BE_DONE_SEARCH })).filter(isApproved);
    const { protocol } = check;
    const gated = approved.filter((t) => {
      const action = protocolActionOf(t);
      return !protocol || (action !== undefined && hasContraindicationChecks(protocol.plan, action, protocol.resolver));
    });
    const heldTasks = check.heldTasks ?? [];
    const sessions = [...gated, ...heldTasks];
    // A contraindication holds the orders that would be given, whoever wrote them (openOrdersOfSessions).
    const orders = await openOrdersOfSessions(this.fhir, sessions);
    // A session held already with an order to give (the EHR's replacement of its order written as it was held, or an
    // order set active again without an override) has it held: only an override releases a contraindication's hold.
    const active = ordersOfStatus(orders, sessions, 'active');
    const heldAlready = ordersOfStatus(orders, heldTasks, 'on-hold');
    // An order is held once, however many sessions it is the order of.
    const ordersOf = (found: { order: AuthorisableRequest }[]) => eachOrderOnce(found).map((f) => f.order);
    const holds = ordersToHold(ordersOf(active), unresolved, howReleased);
    const restated = await this.withoutGoneIssues(
      holdsToRestate(ordersOf(heldAlready), unresolved, howReleased),
      check.issues,
    );
    if (!holds.length && !restated.length) return { outcome: NOTHING_HELD, sessions };
    const tasks = new Map(sessions.map((t) => [t.id, t]));
    const tasksOf = new Map<string, string[]>();
    for (const { order, taskId } of [...active, ...heldAlready]) {
      const ref = `${order.resourceType}/${order.id}`;
      tasksOf.set(ref, [...(tasksOf.get(ref) ?? []), taskId]);
    }
    // One write per Task, though it may hold two orders (one the EHR's replacement left open beside the other).
    const tasksOfHolds = [
      ...new Map(
        [...holds, ...restated].flatMap(({ held }) =>
          (tasksOf.get(`${held.resourceType}/${held.id}`) ?? []).flatMap((id) => {
            const task = tasks.get(id);
            return task ? [[task.id, { read: task, held: heldTask(task, held) }] as const] : [];
          }),
        ),
      ).values(),
    ];
    // A Task held already whose reason reads the same is not written again; the issue implicates it all the same. But
    // one with an order to hold now under it is, with If-Match on what was read: its hold may have been released since
    // (an override), and the order, read after, active again for that (session 57; clinic day seeds 5912, 5913).
    const heldUnderIt = new Set(holds.flatMap(({ held }) => tasksOf.get(`${held.resourceType}/${held.id}`) ?? []));
    const taskHolds = tasksOfHolds.filter(
      ({ read, held }) =>
        read.status !== 'on-hold' || read.statusReason?.text !== held.statusReason?.text || heldUnderIt.has(read.id!),
    );
    const orderChanges = [...holds, ...restated.filter(({ read, held }) => read !== held)];
    const referenceOf = ({ held }: { held: Resource }) => ({ reference: `${held.resourceType}/${held.id}` });
    // What this hold writes (the Provenance's targets), and what the issues implicate: every order and Task they hold.
    const implicated = [...holds, ...restated, ...tasksOfHolds].map(referenceOf);
    const implicating = unresolved.flatMap((issue) => {
      const updated = implicatingOrders(issue, implicated);
      return updated ? [{ read: issue, held: updated }] : [];
    });
    // A hold restated on requests that carry no issue themselves writes the issues alone: they are its targets then.
    const changed = [...orderChanges, ...taskHolds];
    if (!changed.length && !implicating.length) return { outcome: NOTHING_HELD, sessions };
    const targets = (changed.length ? changed : implicating).map(referenceOf);
    const provenance = changeProvenance({
      targets,
      who: THIS_SERVICE,
      activity: 'hold for contraindication',
      now,
      reason: `${protocol ? 'Contraindication found' : 'Care plan’s protocol not found'} after approval: ${unresolved.map((i) => `DetectedIssue/${i.id}`).join(', ')}`,
    });
    const written = await this.writeOrSkip(
      [...updatesOf(orderChanges), ...updatesOf(taskHolds), ...updatesOf(implicating), create(provenance)],
      raced,
    );
    if (!written) return { outcome: NOTHING_HELD, sessions };
    this.logger.warn({ msg: 'orders held for a contraindication', carePlan: check.carePlanId, held: holds.length });
    return { outcome: { held: holds.length, issues: implicating.map(({ held }) => held) }, sessions };
  }

  /**
   * After a clinician overrode `issue`: when no contraindication on its plan is unresolved any more, the orders (and
   * Tasks) the plan's issues held go back to active (ready). `who` is the clinician, named in the release's Provenance
   * with the override's reason. Answers the Tasks released (their reminders, skipped while held, are due again).
   */
  async releaseAfterOverride(input: {
    issue: DetectedIssue;
    who: ProvenanceAgent['who'];
    reason: string;
    now?: Date;
  }): Promise<Task[]> {
    const { issue } = input;
    const carePlan = issue.implicated?.find((r) => r.reference?.startsWith('CarePlan/'))?.reference;
    if (!carePlan) return [];
    return this.releaseIfClear({
      ...input,
      carePlan,
      overridden: issue,
      revisionOf: { reference: `DetectedIssue/${issue.id}/_history/${issue.meta?.versionId}` },
    });
  }

  /**
   * The plan's holds lifted when none of its contraindications is unresolved any more: after an override, and by the
   * sweep for holds an override did not release (a crash between the two) or an issue resolved on the FHIR server
   * itself (a mitigation an EHR wrote).
   */
  async releaseIfClear(input: {
    carePlan: string;
    who: ProvenanceAgent['who'];
    reason: string;
    /** The issue just overridden, as written (a search may not show its new version yet). */
    overridden?: DetectedIssue;
    revisionOf?: Reference;
    now?: Date;
    /** `fail` (a job): a release that lost a race to a change made meanwhile fails, for the job to run again. */
    raced?: RaceHandling;
  }): Promise<Task[]> {
    const { carePlan, overridden, who, reason, revisionOf, now = new Date(), raced = 'skip' } = input;
    const planIssues = await this.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: carePlan });
    const stillUnresolved = planIssues.filter(
      (i) => i.id !== overridden?.id && contraindicationState(i) === 'unresolved',
    );
    if (stillUnresolved.length) return [];
    // What any of the plan's issues held (each hold named what it held on the issues then unresolved), and what its
    // held Tasks hold: an issue deleted on the FHIR server no longer names what it held.
    const refs = [
      ...new Set([
        ...[...(overridden ? [overridden] : []), ...planIssues]
          .flatMap((i) => i.implicated ?? [])
          .map((r) => r.reference ?? '')
          .filter((r) => /^(MedicationRequest|ServiceRequest|CommunicationRequest|Task)\/[^/]+$/.test(r)),
        ...(await this.heldUnderPlan(carePlan)),
      ]),
    ];
    if (!refs.length) return [];
    const read = await this.fhir.batch(refs.map((r) => getEntry(r)));
    const found = (read.entry ?? []).flatMap((e, i) => batchResult<Resource>(e, refs[i]) ?? []);
    const releases = [
      ...(await this.withoutGoneIssues(ordersToRelease({ orders: found.filter(isAuthorisable), stillUnresolved }), [
        ...planIssues,
        ...(overridden ? [overridden] : []),
      ])),
      ...found
        .filter((r): r is Task => r.resourceType === 'Task')
        .flatMap((task) => {
          const released = releasedTask(task);
          return released ? [{ read: task, held: released }] : [];
        }),
    ];
    if (!releases.length) return [];
    const provenance = changeProvenance({
      targets: releases.map(({ held }) => ({ reference: `${held.resourceType}/${held.id}` })),
      revisionOf,
      who,
      activity: overridden ? 'release hold after override' : 'release hold: no contraindication unresolved',
      now,
      reason,
    });
    const written = await this.writeOrSkip([...updatesOf(releases), create(provenance)], raced);
    return written ? releases.flatMap(({ held }) => (held.resourceType === 'Task' ? [held] : [])) : [];
  }

  /**
   * The orders as written, without the DetectedIssues deleted on the FHIR server that they name (a hold restated, or
   * released, after the issue that held them was deleted). Only names besides the plan's issues on record are asked
   * after, in one batch; a failed read keeps them.
   */
  private async withoutGoneIssues(holds: OrderHold[], known: DetectedIssue[]): Promise<OrderHold[]> {
    const others = otherIssuesNamed(
      holds.map(({ held }) => held),
      known,
    );
    if (!others.length) return holds;
    let gone: Set<string>;
    try {
      const read = await this.fhir.batch(others.map((r) => getEntry(r)));
      gone = new Set(others.filter((r, i) => !batchResult<DetectedIssue>(read.entry?.[i], r)));
    } catch {
      return holds;
    }
    return holds.map(({ read, held }) => ({ read, held: withoutIssues(held, gone) }));
  }

  /** The plan's Tasks held for a contraindication, and the orders their approvals wrote, held with them. */
  private async heldUnderPlan(carePlan: string): Promise<string[]> {
    const tasks = (await this.fhir.searchAll<Task>('Task', { 'based-on': carePlan, status: 'on-hold' })).filter(
      isTaskHeldForContraindication,
    );
    const orders = ordersOfStatus(await openOrdersOfSessions(this.fhir, tasks), tasks, 'on-hold');
    return [...tasks.map((t) => `Task/${t.id}`), ...orders.map(({ order }) => `${order.resourceType}/${order.id}`)];
  }

  /** A change made meanwhile (a clinician, an EHR) wins: nothing is written, and the next sweep looks again. */
  private async writeOrSkip(entries: BundleEntry[], raced: RaceHandling = 'skip'): Promise<boolean> {
    try {
      await this.fhir.transaction(entries);
      return true;
    } catch (err) {
      if (skipsStaleWrite(err, raced)) return false;
      throw err;
    }
  }
}

/** The open orders of these Tasks' sessions (openOrdersOfSessions) in one status, each with its Task's id. */
function ordersOfStatus(
  found: Map<string, OpenOrder>,
  tasks: Task[],
  status: AuthorisableRequest['status'],
): { order: AuthorisableRequest; taskId: string }[] {
  return tasks.flatMap((task) =>
    openOrdersOfSession(found.get(task.id!))
      .filter(({ order }) => order.status === status)
      .map(({ order }) => ({ order, taskId: task.id! })),
  );
}

function updatesOf(changes: { read: Resource; held: Resource }[]): BundleEntry[] {
  return changes.map(({ read, held }) => updateEntry(held, read.meta?.versionId));
}

function create(resource: Resource): BundleEntry {
  return { resource, request: { method: 'POST', url: resource.resourceType } };
}
