import { Injectable, Logger } from '@nestjs/common';
import type { CarePlan, DetectedIssue, Task } from '@medplum/fhirtypes';
import {
  FhirClient,
  skipsStaleWrite,
  includedOf,
  matchesOf,
  readAndSearchEach,
  searchEach,
  updateEntry,
  type NamedSearch,
  type RaceHandling,
} from '@kc/fhir';
import {
  approvedOnPausedPlans,
  carePlanReferenceOf,
  heldNamingItsPlan,
  ordersToHoldWhilePaused,
  ordersToResume,
  pausedPlanOf,
  type OrderChange,
} from '@kc/followups';
import { openOrdersOfSessions } from '@kc/nest-core';
import {
  AUTHORISABLE_TYPES,
  changeProvenance,
  eachOrderOnce,
  openOrdersOfSession,
  PLAN_PAUSED_TAG_SEARCH,
  THIS_SERVICE,
  type AuthorisableRequest,
} from '@kc/task-states';
import type { OpenTasks } from './open-tasks';

/**
 * Holds the approved orders of paused plans and releases them when their plans resume (paused-plans.ts): each plan's
 * orders in one transaction with If-Match and a Provenance naming the service (a clinician's decision or another
 * write made meanwhile wins; the next run looks again). Runs with the overdue sweep (OVERDUE_SWEEP_CRON), and for one
 * plan when a Subscription notifies its change.
 */
@Injectable()
export class PausedPlanHolds {
  private readonly logger = new Logger(PausedPlanHolds.name);

  constructor(private readonly fhir: FhirClient) {}

  /**
   * The approved orders of the paused plans among `open`, held. `raced: 'fail'` (a job told of the plan): a write that
   * lost a race to a change made meanwhile fails, for the job to run again; else it is left to the next sweep.
   */
  async hold(open: OpenTasks, now = new Date(), raced: RaceHandling = 'skip'): Promise<number> {
    const tasks = approvedOnPausedPlans(open.approved, open.carePlans);
    if (!tasks.length) return 0;
    let held = await this.holdOrdersOf(tasks, now, raced);
    // Read once more when something was held: an order still open then is the EHR's replacement of one written
    // between this hold's read and its write (its cancel of the order it replaced never sent), held now. Since
    // session 57; before, it was left to give until the next sweep.
    if (held) held += await this.holdOrdersOf(tasks, now, raced);
    if (held) this.logger.log({ msg: 'held the approved orders of paused plans', held });
    return held;
  }

  /** The open orders of these approved sessions of paused plans, held: how many. */
  private async holdOrdersOf(tasks: Task[], now: Date, raced: RaceHandling): Promise<number> {
    const orders = await openOrdersOfSessions(this.fhir, tasks);
    // Each with its Task's plan: an order of the EHR's naming none is held naming it, for the resumption to find.
    // The EHR's replacements left open beside an order are held with it.
    // Each order once, however many sessions it is the order of.
    const ofPlans = eachOrderOnce(
      tasks.flatMap((t) =>
        openOrdersOfSession(orders.get(t.id!)).map((open) => ({ ...open, plan: carePlanReferenceOf(t) })),
      ),
    );
    return this.write(ordersToHoldWhilePaused(ofPlans), 'hold', now, raced);
  }

  /**
   * Of `held` (heldOrders), those that may be given again, released: one batch with their plans and the plans'
   * contraindications, then each plan's writes.
   */
  async release(held: AuthorisableRequest[], now = new Date(), raced: RaceHandling = 'skip'): Promise<number> {
    const plans = [...new Set(held.map(pausedPlanOf).filter((r): r is string => Boolean(r)))];
    if (!plans.length) return 0;
    const issuesSearch: NamedSearch = {
      name: 'issues',
      resourceType: 'DetectedIssue',
      params: { implicated: plans.join(','), _count: 200 },
      everyMatch: true,
    };
    const { read, found } = await readAndSearchEach(this.fhir, plans, [issuesSearch]);
    const carePlans = new Map<string, CarePlan>();
    plans.forEach((ref, i) => {
      const carePlan = read[i] as CarePlan | undefined;
      if (carePlan) carePlans.set(ref, carePlan);
    });
    const issues = new Map<string, DetectedIssue[]>();
    for (const issue of matchesOf<DetectedIssue>(found.issues))
      for (const { reference } of issue.implicated ?? [])
        if (reference && plans.includes(reference)) issues.set(reference, [...(issues.get(reference) ?? []), issue]);
    const released = await this.write(ordersToResume({ orders: held, carePlans, issues }), 'release', now, raced);
    if (released) this.logger.log({ msg: 'released the orders of resumed plans', released });
    return released;
  }

  /**
   * The orders held for paused plans: every one (with the overdue sweep), or one plan's (`carePlanId`, when it is
   * notified). One batch, a search per request type (by the hold's tag: few), with the Tasks naming them: an order
   * whose hold lost the plan it named takes it from the session approved on it (heldNamingItsPlan).
   */
  async heldOrders(carePlanId?: string): Promise<AuthorisableRequest[]> {
    const found = await searchEach(
      this.fhir,
      AUTHORISABLE_TYPES.map((type) => ({
        name: type,
        resourceType: type,
        params: { status: 'on-hold', _tag: PLAN_PAUSED_TAG_SEARCH, _count: 200, _revinclude: 'Task:based-on' },
        everyMatch: true,
      })),
    );
    return AUTHORISABLE_TYPES.flatMap((type) =>
      matchesOf<AuthorisableRequest>(found[type]).map((o) =>
        heldNamingItsPlan(o, includedOf<Task>(found[type], 'Task')),
      ),
    ).filter((o) => !carePlanId || pausedPlanOf(o) === `CarePlan/${carePlanId}`);
  }

  /** Each plan's changes in one transaction with a Provenance; returns how many orders were written. */
  private async write(
    changes: OrderChange[],
    activity: 'hold' | 'release',
    now: Date,
    raced: RaceHandling,
  ): Promise<number> {
    const byPlan = new Map<string, OrderChange[]>();
    for (const change of changes) {
      // A hold names the plan on the order it writes, a release removes it from the one it read.
      const plan = pausedPlanOf(change.read) ?? pausedPlanOf(change.changed) ?? '';
      byPlan.set(plan, [...(byPlan.get(plan) ?? []), change]);
    }
    let written = 0;
    for (const [plan, planChanges] of byPlan) {
      const provenance = changeProvenance({
        targets: planChanges.map(({ read }) => ({ reference: `${read.resourceType}/${read.id}` })),
        who: THIS_SERVICE,
        activity,
        now,
        reason:
          activity === 'hold'
            ? `Held: its care plan is on hold (${plan})`
            : `Released: its care plan was resumed (${plan})`,
      });
      try {
        await this.fhir.transaction([
          ...planChanges.map(({ read, changed }) => updateEntry(changed, read.meta?.versionId)),
          { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
        ]);
        written += planChanges.length;
      } catch (err) {
        if (!skipsStaleWrite(err, raced)) throw err;
      }
    }
    return written;
  }
}
