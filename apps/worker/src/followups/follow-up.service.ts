import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { slicesOf } from '@kc/common';
import type { BundleEntry, CarePlan, Procedure } from '@medplum/fhirtypes';
import { FhirClient, FhirUnavailableError, MAX_SERIALIZABLE_TRANSACTION_ENTRIES, sharedGroups } from '@kc/fhir';
import {
  cancelledOrdersGivenDuring,
  NOT_BASED_ON_A_CAREPLAN,
  carePlanTakesFollowUps,
  takesChecksOnly,
  nothingPlannedUnder,
  planReopenedForAnInfusion,
  REOPENED_FOR_AN_INFUSION,
  completedInfusionCount,
  infusionFollowUpActions,
  fulfilledBy,
  infusionAsGiven,
  infusionPhase,
  infusionTaskUpdates,
  planFollowUps,
  sameTimeInfusions,
} from '@kc/followups';
import { openOrdersOfSessions, PlanDefinitions } from '@kc/nest-core';
import { uuidFromKey, withListedActivities } from '@kc/protocols';
import { ordersFollowedOn, orderTaskIdOf } from '@kc/task-states';
import { FollowUpMetrics, ignoredWhy } from './follow-up.metrics';
import { followedUpAmong, readAround, readEvents, type EventContext } from './follow-up-reads';
import { linkUnlinkedInfusion } from './unlinked-infusions';
import {
  activityEntry,
  answeredTaskWrites,
  keyOf,
  newIssues,
  orderOf,
  pumpRecordsOf,
  toEntries,
  type Surroundings,
} from './event-writes';
import { serviceChangeEntries } from '../maintenance/withdrawal-writes';
import { InfusionsUnderClosedPlans, type InfusionUnderClosedPlan } from '../alerts/infusions-under-closed-plans';

export type FollowUpOutcome =
  | {
      status: 'created';
      carePlanId: string;
      tasks: string[];
      alreadyExisted: number;
      superseded: number;
      fulfilled: number;
      contraindications: number;
      remindersRevoked: number;
      ordersClosed: number;
      /** Sessions not proposed: they would begin after the plan's end (`CarePlan.period.end`), their action ids. */
      afterPlanEnd?: string[];
      /** Plans to check again (`CarePlan/<id>`): an infusion linked here resolved the issue that held them. */
      plansToRecheck?: string[];
      /** Cancelled orders the pump began during this infusion (cancelledOrdersGivenDuring): their jobs judge them again. */
      cancelledOrdersGiven?: string[];
    }
  | {
      status: 'ignored';
      reason: string;
      /** Plans to check again: an infusion naming none may be a session of theirs, and its issue holds them. */
      plansToRecheck?: string[];
      cancelledOrdersGiven?: string[];
    };

/** Progress reports: the job's progress in the dashboard. */
export type ProgressReporter = (percent: number, step: string) => Promise<void>;

/** An infusion event to follow up: its Procedure, and where its job's progress goes. */
export interface FollowUpEvent {
  procedureId: string;
  progress?: ProgressReporter;
}

/** An event's writes, planned: its transaction entries, and its outcome once the server answered them. */
interface PlannedWrites {
  /** Contraindications written before the entries, in a transaction of their own (rare: see planWrites). */
  issuesFirst: BundleEntry[];
  entries: BundleEntry[];
  outcome: (answers: BundleEntry[]) => FollowUpOutcome;
}

/**
 * The I/O around the pure follow-up rules: read the infusion and its CarePlan from the FHIR server, work out
 * the follow-ups, write them in one transaction (a retry or a duplicate event finds the Tasks already there, by
 * their deterministic keys, and writes nothing new).
 */
@Injectable()
export class FollowUpService {
  private readonly logger = new Logger(FollowUpService.name);
  /** CarePlans a batch of this process is reading and writing, each with the promise of that batch's end. */
  private readonly plansBeingWritten = new Map<string, Promise<void>>();

  constructor(
    private readonly fhir: FhirClient,
    private readonly protocols: PlanDefinitions,
    private readonly metrics: FollowUpMetrics,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'followUpOwner' | 'clinicTimeZone'>,
    /** Tells the clinic of infusions under a plan the EHR closed (absent: nobody is told). */
    private readonly closedPlans?: InfusionsUnderClosedPlans,
  ) {}

  /** One event (handleMany with one): its outcome, or the error that failed it (a job retries it). */
  async handle(procedureId: string, progress?: ProgressReporter): Promise<FollowUpOutcome> {
    const [result] = await this.handleMany([{ procedureId, progress }]);
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  }

  /**
   * At most 3 FHIR round trips for the whole batch (test/followups-round-trips.e2e-spec.ts): (1) the Procedures with
   * their CarePlans (`_include`), (2) one batch of reads (per event: history, patient data, Patient, DetectedIssues,
   * the CarePlan's open Tasks and active reminders, the patient's orders still to be given, the Tasks already written
   * for this infusion), (3) one transaction holding every event's creates, the If-Match updates of the Tasks each
   * infusion fulfils or supersedes (and of their pending reminders, revoked, and their orders, closed) and each
   * CarePlan's activity list. More only when a search has more than one page (a CarePlan with over 1,000
   * infusions), when the patient has an open order the EHR wrote to replace another (withSessionOrders), for an
   * infusion charted naming no plan (followUnlinked: its plan looked for and linked first), or as below.
   *
   * Each event's result is its own: one that fails to read or plan fails alone. Events of one CarePlan (or one
   * Procedure twice) are handled one after another, each reading what the one before wrote. A transaction of several
   * events that the server refuses (a conflict, an invalid entry) is retried event by event, so one event's problem
   * never fails the others; a server that cannot be reached fails them all (their jobs retry).
   */
  async handleMany(events: FollowUpEvent[], { linking = true } = {}): Promise<PromiseSettledResult<FollowUpOutcome>[]> {
    const results = new Array<PromiseSettledResult<FollowUpOutcome>>(events.length);
    let found: Awaited<ReturnType<typeof readEvents>>;
    try {
      found = await readEvents(this.fhir, this.protocols, [...new Set(events.map((e) => e.procedureId))]);
    } catch (err) {
      return events.map(() => ({ status: 'rejected', reason: err }));
    }
    const now = new Date();
    const round: { index: number; context: EventContext }[] = [];
    // Events of a plan this batch already has, or another batch of this process is writing, go after this round,
    // once that batch is done: they read what it wrote (two batches writing one plan would fail on its If-Match).
    const later: number[] = [];
    const busyPlans = new Set<Promise<void>>();
    const unlinked: { index: number; procedure: Procedure }[] = [];
    events.forEach((e, index) => {
      const context = found.get(e.procedureId)!;
      if ('unlinked' in context) {
        if (linking) unlinked.push({ index, procedure: context.unlinked });
        else results[index] = fulfilled(this.ignore(e.procedureId, NOT_BASED_ON_A_CAREPLAN));
        return;
      }
      if ('ignored' in context) {
        results[index] = fulfilled(this.ignore(e.procedureId, context.ignored));
        return;
      }
      if ('failed' in context) {
        results[index] = { status: 'rejected', reason: context.failed };
        return;
      }
      const busy = this.plansBeingWritten.get(context.carePlan.id!);
      if (busy || round.some((r) => r.context.carePlan.id === context.carePlan.id)) {
        later.push(index);
        if (busy) busyPlans.add(busy);
      } else round.push({ index, context });
    });
    const release = this.holdPlans(round.map((r) => r.context.carePlan.id!));
    let alone: number[];
    try {
      alone = await this.handleRound(round, events, results, now);
    } finally {
      release();
    }
    // A shared transaction the server refused: each of its events again on its own (its plan released above).
    for (const index of alone) [results[index]] = await this.handleMany([events[index]]);
    if (later.length) {
      await Promise.all(busyPlans);
      const again = await this.handleMany(later.map((i) => events[i]));
      later.forEach((index, k) => (results[index] = again[k]));
    }
    for (const { index, procedure } of unlinked)
      results[index] = await this.followUnlinked(events[index], { ...procedure, id: events[index].procedureId });
    return results;
  }

  /**
   * An infusion the EHR recorded naming no plan: linked to the one plan tied to it (linkUnlinkedInfusion), then
   * followed up as any infusion (read again); else ignored, with why. Since session 43; before, always ignored.
   */
  private async followUnlinked(
    event: FollowUpEvent,
    procedure: Procedure & { id: string },
  ): Promise<PromiseSettledResult<FollowUpOutcome>> {
    let linked: Awaited<ReturnType<typeof linkUnlinkedInfusion>>;
    try {
      linked = await linkUnlinkedInfusion(this.fhir, this.protocols, procedure, new Date(), this.config.clinicTimeZone);
      if ('ignored' in linked) {
        const ignored = this.ignore(event.procedureId, linked.ignored);
        return fulfilled(linked.held.length ? { ...ignored, plansToRecheck: linked.held } : ignored);
      }
      this.logger.log({ msg: 'infusion linked to its care plan', procedure: event.procedureId, to: linked.linked });
    } catch (err) {
      return { status: 'rejected', reason: err };
    }
    const [result] = await this.handleMany([event], { linking: false });
    const released = linked.released;
    if (result.status === 'rejected' || !released.length) return result;
    return fulfilled({ ...result.value, plansToRecheck: released });
  }

  /**
   * A round of events of distinct CarePlans: one batch of reads, then the writes; each event's result in `results`.
   * Answers the events of a shared transaction the server refused, to be handled again one by one.
   */
  private async handleRound(
    round: { index: number; context: EventContext }[],
    events: FollowUpEvent[],
    results: PromiseSettledResult<FollowUpOutcome>[],
    now: Date,
  ): Promise<number[]> {
    if (!round.length) return [];
    this.metrics.batchEvents.observe(round.length);
    await Promise.all(round.map(({ index }) => progressOf(events[index])(20, 'read infusion')));
    let around: Surroundings[];
    try {
      const read = await readAround(
        this.fhir,
        round.map((r) => r.context),
        { careTeams: this.config.followUpOwner === 'care-team' },
      );
      around = await Promise.all(read.map((a) => this.withSessionOrders(a)));
    } catch (err) {
      for (const { index } of round) results[index] = { status: 'rejected', reason: err };
      return [];
    }
    await Promise.all(round.map(({ index }) => progressOf(events[index])(50, 'read care plan and history')));
    let twice: { why?: string; copies: Set<string> }[];
    try {
      twice = await Promise.all(round.map(({ context }, i) => this.chartedTwice(context, around[i])));
    } catch (err) {
      for (const { index } of round) results[index] = { status: 'rejected', reason: err };
      return [];
    }
    const planned: { index: number; writes: PlannedWrites }[] = [];
    const underClosedPlans: { index: number; infusion: InfusionUnderClosedPlan }[] = [];
    round.forEach(({ index, context }, i) => {
      const { why, copies } = twice[i];
      if (why) {
        results[index] = fulfilled(this.ignore(context.event.procedureId, why));
        return;
      }
      // Its copies not followed up yet are this infusion, not others after it: they answer nothing it planned.
      if (copies.size) around[i] = { ...around[i], history: around[i].history.filter((p) => !copies.has(p.id!)) };
      const carePlan = around[i].carePlan;
      const open = carePlan ? carePlanTakesFollowUps(carePlan) : { ok: false as const, reason: 'CarePlan not found' };
      // A plan completed here at its end, an infusion charted under it since: active again for its follow-up.
      const reopened = carePlan && planReopenedForAnInfusion(carePlan, now);
      // Stopped or completed in the EHR: the infusion has its check, nothing more (planFollowUps; since session 52).
      const checksOnly = Boolean(carePlan && !open.ok && !reopened && takesChecksOnly(carePlan));
      // A plan written in error takes no follow-ups; a session the pump gave under it (left to its infusion by the
      // withdrawal) is still answered: done, its order completed.
      const gaveOnStopped =
        carePlan && !open.ok && !reopened && !checksOnly
          ? this.answersOnly({ ...context, carePlan }, around[i], now)
          : undefined;
      // With no check, its plan closed in the EHR: the clinic is told below.
      const unchecked = reopened || checksOnly ? undefined : underClosedPlan(context, around[i]);
      if (unchecked) underClosedPlans.push({ index, infusion: unchecked });
      if (!open.ok && !gaveOnStopped && !reopened && !checksOnly) {
        results[index] = fulfilled(this.ignore(context.event.procedureId, open.reason));
        return;
      }
      try {
        const writes =
          gaveOnStopped ??
          this.planWrites({ ...context, carePlan: reopened || carePlan! }, around[i], now, {
            reopenedFrom: reopened ? carePlan : undefined,
            checksOnly,
          });
        if (!writes && !open.ok) results[index] = fulfilled(this.ignore(context.event.procedureId, open.reason));
        else if (writes) planned.push({ index, writes });
      } catch (err) {
        results[index] = { status: 'rejected', reason: err };
      }
    });
    const { settled, alone } = await this.writeAll(planned, events);
    for (const [index, result] of settled) results[index] = result;
    // A session the pump began that this service closed before the infusion was on record: judged again now it is.
    round.forEach(({ index, context }, i) => {
      const given = cancelledOrdersGivenDuring(context.event, around[i].given);
      const result = results[index];
      if (given.length && result?.status === 'fulfilled')
        results[index] = fulfilled({ ...result.value, cancelledOrdersGiven: given });
    });
    // Told once (their records); a failure fails their jobs, which run again.
    const untold = underClosedPlans.filter(({ index }) => results[index]?.status === 'fulfilled');
    if (untold.length && this.closedPlans)
      try {
        await this.closedPlans.tell(
          untold.map((u) => u.infusion),
          now,
        );
      } catch (err) {
        for (const { index } of untold) results[index] = { status: 'rejected', reason: err };
      }
    return alone;
  }

  /**
   * Why an infusion is not followed up, when it is one charted twice: the plan has another completed infusion for its
   * time (sameTimeInfusions: overlapping, or closer than one infusion lasts) that was followed up already (its Tasks on record). Its follow-ups would be a
   * second post-infusion check and a second next session awaiting approval for the same time (two orders, if both were
   * approved). Since session 47. One search more, only when the plan has such an infusion.
   */
  private async chartedTwice(
    context: EventContext,
    around: Surroundings,
  ): Promise<{ why?: string; copies: Set<string> }> {
    const { event, infusion, plan } = context;
    const sameTime = sameTimeInfusions(event, around.history, infusion);
    const copies = new Set(sameTime.map((p) => p.id!));
    if (!sameTime.length) return { copies };
    const [first] = await followedUpAmong(this.fhir, plan, event.carePlanId, sameTime);
    return first
      ? {
          why:
            `charted twice: Procedure/${first.id} was charted for the same time on this plan (overlapping, or closer than one infusion lasts) and followed up ` +
            'already (an infusion charted twice is followed up once; taken back, that one has this one followed up)',
          copies,
        }
      : { copies };
  }

  /**
   * An infusion under a stopped plan: only the Tasks the pump gave during it are answered (done, their orders
   * completed, their reminders ended), and the orders it gave whose Task is gone completed; nothing new is planned and
   * nothing else superseded. Undefined when the pump gave none of them.
   */
  private answersOnly(context: EventContext, around: Surroundings, now: Date): PlannedWrites | undefined {
    const { event, procedure, infusion, plan, definitions } = context;
    const pump = pumpRecordsOf(around);
    const openTasks = around.openTasks.filter((t) => t.id && pump.givenTaskIds.has(t.id));
    const infusionActions = infusionFollowUpActions(plan, definitions, infusion);
    const answered = answeredTaskWrites({
      event,
      procedure,
      infusion,
      infusionActions,
      around: { ...around, openTasks },
      pump,
      newTasks: [],
      now,
      zone: this.config.clinicTimeZone,
    });
    if (!answered.updateEntries.length) return undefined;
    return {
      issuesFirst: [],
      entries: [...answered.updateEntries, ...answered.provenance],
      outcome: () => {
        const { done, superseded, remindersRevoked, ordersClosed } = answered.counts;
        this.logger.log({
          msg: 'infusion under a stopped plan: its given session answered',
          procedure: event.procedureId,
          done,
        });
        return {
          status: 'created',
          carePlanId: context.carePlan.id!,
          tasks: [],
          alreadyExisted: 0,
          superseded,
          fulfilled: done,
          contraindications: 0,
          remindersRevoked,
          ordersClosed,
        };
      },
    };
  }

  /**
   * Every open order of the approved sessions' chains (openOrdersOfSessions: one batch), only when the patient has an
   * open order the EHR wrote replacing another (rare: an event otherwise keeps its three round trips): the EHR's
   * replacement of a session's order closed here, and the EHR's orders left open beside the order written here, also
   * those reached only through a cancelled order (replaced twice), which the patient's open orders cannot show. Before
   * session 37 the infusion closed only the order written here and left the EHR's replacement active, to be given
   * again; before session 39, one naming a cancelled replacement.
   */
  private async withSessionOrders(around: Surroundings): Promise<Surroundings> {
    if (!around.orders.some((o) => !orderTaskIdOf(o) && ordersFollowedOn(o).length)) return around;
    const sessions = around.openTasks.filter(
      (t) => t.id && t.status !== 'draft' && t.focus?.reference?.startsWith('MedicationRequest/'),
    );
    if (!sessions.length) return around;
    return { ...around, sessionOrders: await openOrdersOfSessions(this.fhir, sessions) };
  }

  /**
   * Marks CarePlans as being written by a batch of this process until the returned function is called: another
   * batch holding an event of one of them waits for it instead of racing it to the plan's If-Match.
   */
  private holdPlans(carePlanIds: string[]): () => void {
    let done!: () => void;
    const written = new Promise<void>((resolve) => (done = resolve));
    for (const id of carePlanIds) this.plansBeingWritten.set(id, written);
    return () => {
      for (const id of carePlanIds) if (this.plansBeingWritten.get(id) === written) this.plansBeingWritten.delete(id);
      done();
    };
  }

  /**
   * Round trip 3: the planned writes in as few transactions as the server takes (usually one). The events of a
   * shared transaction that the server refused come back as `alone`, to be handled again one by one.
   */
  private async writeAll(
    planned: { index: number; writes: PlannedWrites }[],
    events: FollowUpEvent[],
  ): Promise<{ settled: [number, PromiseSettledResult<FollowUpOutcome>][]; alone: number[] }> {
    const settled: [number, PromiseSettledResult<FollowUpOutcome>][] = [];
    const alone: number[] = [];
    // One result per event: its outcome once its progress is reported, or what failed (its job retries).
    const settle = async (index: number, outcome: () => FollowUpOutcome) => {
      let result: PromiseSettledResult<FollowUpOutcome>;
      try {
        result = fulfilled(outcome());
        await progressOf(events[index])(90, 'wrote follow-up tasks');
      } catch (err) {
        result = { status: 'rejected', reason: err };
      }
      settled.push([index, result]);
    };
    const issuesWritten: typeof planned = [];
    for (const p of planned) {
      try {
        if (p.writes.issuesFirst.length) await this.fhir.transaction(p.writes.issuesFirst);
        issuesWritten.push(p);
      } catch (err) {
        settled.push([p.index, { status: 'rejected', reason: err }]);
      }
    }
    for (const { index, writes } of issuesWritten.filter((p) => !p.writes.entries.length))
      await settle(index, () => writes.outcome([]));
    const writing = issuesWritten.filter((p) => p.writes.entries.length);
    // As few transactions as the server takes (Medplum: a conditional entry alone, at most 50 updates in one).
    for (const chunk of sharedGroups(writing.map((p) => p.writes.entries)).map((g) => g.map((i) => writing[i]))) {
      let answers: BundleEntry[];
      try {
        answers = (await this.fhir.transaction(chunk.flatMap((p) => p.writes.entries))).entry ?? [];
      } catch (err) {
        // Refused by the server: each event alone (one event's conflict or invalid entry is its own). Unreachable:
        // every event fails, and its job retries.
        if (chunk.length > 1 && !(err instanceof FhirUnavailableError)) {
          this.metrics.batchesSplit.inc();
          alone.push(...chunk.map((p) => p.index));
        } else for (const { index } of chunk) settled.push([index, { status: 'rejected', reason: err }]);
        continue;
      }
      const parts = slicesOf(
        answers,
        chunk.map((p) => p.writes.entries.length),
      );
      for (const [k, { index, writes }] of chunk.entries()) await settle(index, () => writes.outcome(parts[k]));
    }
    return { settled, alone };
  }

  /**
   * An event's follow-ups worked out by the pure rules, as transaction entries and how to read their answers.
   * `reopenedFrom`: the plan as read, completed here at its end, `context.carePlan` being it made active again for this
   * infusion. Then the plan is written active (with a Provenance) only if the infusion has a follow-up to write (a
   * re-notified infusion followed up already does not reopen it): undefined otherwise. `checksOnly`: a plan closed in
   * the EHR (takesChecksOnly): its check proposed and the sessions the pump gave answered, nothing else; with the check
   * written already, the sessions alone (answersOnly).
   */
  private planWrites(
    context: EventContext,
    aroundAll: Surroundings,
    now: Date,
    { reopenedFrom, checksOnly = false }: { reopenedFrom?: CarePlan; checksOnly?: boolean } = {},
  ): PlannedWrites | undefined {
    const { procedure, event, carePlan, plan, definitions, infusion } = context;
    // Under a plan closed in the EHR only the sessions the pump gave are this infusion's to answer (its checks kept):
    // the pump's records judged on those alone give the same sessions.
    const pump = pumpRecordsOf(aroundAll);
    const around = checksOnly
      ? { ...aroundAll, openTasks: aroundAll.openTasks.filter((t) => t.id && pump.givenTaskIds.has(t.id)) }
      : aroundAll;
    const infusionActions = infusionFollowUpActions(plan, definitions, infusion);
    // What this infusion fulfils (its session or booster) gives its phase, and so its check's. answeredTasks judges
    // again with the new Tasks included; this infusion fulfils none of those (they follow it).
    const fulfilled = infusionTaskUpdates({
      event,
      procedure,
      openTasks: around.openTasks,
      history: around.history,
      definition: infusion,
      infusionActions,
      ...pump,
      zone: this.config.clinicTimeZone,
    });
    // The session or booster Task this infusion gave: its order's rate and, on request, its owner carry forward.
    const givenTask = fulfilledBy(fulfilled, event.procedureId);
    const planned = planFollowUps({
      event,
      carePlan,
      plan,
      catalog: definitions,
      completedInfusionCount: completedInfusionCount(event, around.history, infusion),
      patientData: around.patientData,
      patient: around.patient,
      overridden: around.overridden,
      infusionPhase: infusionPhase(fulfilled, event.procedureId, plan),
      // What this infusion gave: the next sessions are proposed at the rate per kg last given (titrated by the
      // clinician, at approval or at the pump).
      given: infusionAsGiven({
        procedureId: event.procedureId,
        performed: event.performed,
        drug: infusion.drug,
        records: around.given,
        approved: orderOf(givenTask, around.orders),
      }),
      // A primary-nurse clinic: the follow-ups are whoever's the infusion's Task was (else nobody's until taken).
      owner: this.config.followUpOwner === 'infusion' ? givenTask?.owner : undefined,
      // A clinic with care teams: each is the member's in the role its protocol names (a nurse).
      careTeams: this.config.followUpOwner === 'care-team' ? around.careTeams : undefined,
      now,
      zone: this.config.clinicTimeZone,
    });
    const writtenByKey = new Map(around.written.map((t) => [keyOf(t), t]));
    const alreadyWritten = planned.followUps
      .filter((f) => writtenByKey.has(f.key))
      .map((f) => `Task/${writtenByKey.get(f.key)!.id}`);
    const newTasks = planned.followUps
      .filter((f) => !writtenByKey.has(f.key))
      .map((f) => ({ ...f, fullUrl: `urn:uuid:${uuidFromKey(`task|${f.key}`)}` }));
    if (reopenedFrom && !newTasks.length) return undefined;
    if (checksOnly && !newTasks.length) return this.answersOnly(context, aroundAll, now);
    const answered = answeredTaskWrites({
      event,
      procedure,
      infusion,
      infusionActions,
      around,
      pump,
      newTasks,
      now,
      zone: this.config.clinicTimeZone,
    });
    const listed = [...alreadyWritten, ...newTasks.map((f) => f.fullUrl)];
    const carePlanUpdate = reopenedFrom
      ? serviceChangeEntries(
          [{ resource: withListedActivities(carePlan, listed) ?? carePlan, read: reopenedFrom }],
          reopenedFrom,
          {
            activity: 'reopen the plan for an infusion charted after its end',
            reason: REOPENED_FOR_AN_INFUSION,
            sources: [`Procedure/${event.procedureId}`],
          },
          now,
        )
      : activityEntry(carePlan, listed);
    // With the CarePlan's If-Match update in the transaction, two follow-up writers for the same plan cannot both land
    // (one gets 412, its job retries and re-reads), so Tasks need no If-None-Exist: no conditional entry, so Medplum
    // runs the transaction without SERIALIZABLE isolation or its 8-entry limit, and events of different patients never
    // conflict. A contraindication is a conditional create on its key all the same: the approvals' re-check, the
    // sweep and the notified records find it too, and write it without touching the plan (two of them were written
    // when a notified Condition and the infusion came together). Past the 8 entries, it is written first, alone.
    const issues = newIssues(planned.detectedIssues, around.issues).map((i): BundleEntry => ({
      resource: i.resource,
      request: { method: 'POST', url: 'DetectedIssue', ifNoneExist: i.ifNoneExist },
    }));
    const rest = [
      ...newTasks.flatMap((f) => toEntries(f, f.fullUrl, answered.created.get(f.fullUrl)!)),
      ...answered.updateEntries,
      ...answered.provenance,
      ...carePlanUpdate,
    ];
    const together = issues.length + rest.length <= MAX_SERIALIZABLE_TRANSACTION_ENTRIES;
    const entries = together ? [...issues, ...rest] : rest;
    return {
      issuesFirst: together ? [] : issues,
      entries,
      outcome: (answers) => {
        const taskResponses = answers.filter(
          (e, i) =>
            entries[i]?.request?.method === 'POST' &&
            (/^Task\//.test(e.response?.location ?? '') || e.resource?.resourceType === 'Task'),
        );
        const tasks = [
          ...alreadyWritten,
          ...taskResponses.map((e) =>
            e.resource?.id ? `Task/${e.resource.id}` : (e.response?.location ?? '').split('/_history')[0],
          ),
        ];
        const { done, superseded, remindersRevoked, ordersClosed } = answered.counts;
        const contraindications = planned.detectedIssues.length;
        const alreadyExisted = alreadyWritten.length;
        this.logger.log({
          msg: reopenedFrom ? 'follow-ups written; plan completed at its end made active again' : 'follow-ups written',
          procedure: event.procedureId,
          carePlan: carePlan.id,
          tasks: tasks.length,
          alreadyExisted,
          done,
          superseded,
          remindersRevoked,
          ordersClosed,
          contraindications,
        });
        return {
          status: 'created',
          carePlanId: carePlan.id!,
          tasks,
          alreadyExisted,
          superseded,
          fulfilled: done,
          contraindications,
          remindersRevoked,
          ordersClosed,
          ...(planned.afterPlanEnd.length ? { afterPlanEnd: planned.afterPlanEnd } : {}),
        };
      },
    };
  }

  private ignore(procedureId: string, reason: string): FollowUpOutcome {
    this.metrics.ignored.inc({ why: ignoredWhy(reason) });
    this.logger.log({ msg: 'infusion event ignored', procedure: procedureId, reason });
    return { status: 'ignored', reason };
  }
}

/**
 * An infusion under a plan the EHR closed and no check is planned under (nothingPlannedUnder: written in error), that
 * none of its follow-ups' keys was written for before: nothing is planned for it, so it has no check.
 */
function underClosedPlan(context: EventContext, around: Surroundings): InfusionUnderClosedPlan | undefined {
  const { carePlan } = around;
  if (!carePlan || around.written.length) return undefined;
  const why = nothingPlannedUnder(carePlan);
  return why ? { procedure: context.procedure, carePlan, why } : undefined;
}

const noProgress: ProgressReporter = () => Promise.resolve();

function progressOf(event: FollowUpEvent): ProgressReporter {
  return event.progress ?? noProgress;
}

function fulfilled<T>(value: T): PromiseFulfilledResult<T> {
  return { status: 'fulfilled', value };
}
