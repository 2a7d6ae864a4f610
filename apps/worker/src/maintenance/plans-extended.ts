import { Inject, Injectable, Logger } from '@nestjs/common';
import type { CarePlan, Procedure, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import {
  FhirClient,
  FhirUnavailableError,
  includedOf,
  matchesOf,
  readAndSearchEach,
  skipsStaleWrite,
  updateEntry,
  type RaceHandling,
} from '@kc/fhir';
import {
  carePlanHoldsCare,
  proposedAgainEntries,
  sessionsProposedAgainForNewEnd,
  type ProposedAgain,
} from '@kc/followups';
import { withListedActivities } from '@kc/protocols';
import { InfusionEventsProducer } from '@kc/queue';
import { changeProvenance, isAuthorisable, THIS_SERVICE, type AuthorisableRequest } from '@kc/task-states';
import { PollCursors } from './change-polls';
import { pollFromCursor } from './cursor-poll';
import { openTasksOfPlan, type OpenTasks } from './open-tasks';
import { startCursor } from './poll-cursor';

/** The sweep's cursor of the active plans changed since its last run (in Redis, beside the polls'). */
const CHANGED_PLANS_CURSOR = 'active-plans-changed';
/** How far back a sweep with no cursor stored yet looks: the plans changed while no worker had swept yet. */
const FIRST_LOOK_BACK_MS = 86_400_000;

/**
 * A plan whose change was heard, holding care with no infusion session open: its course may have been extended in the
 * EHR (`CarePlan.period.end` moved later, or removed; a plan completed at its end made active again). Its sessions
 * withdrawn because the old end came before them are proposed again (sessionsProposedAgainForNewEnd: new Tasks awaiting
 * approval, listed on the plan, with a Provenance naming the service), and its latest infusion is followed up again,
 * which proposes the sessions its follow-up left out for the old end (`afterPlanEnd`; by their keys, once). One batch
 * (the plan, its Tasks with their proposals, its latest infusion), only for such a plan: one mid-course has
 * its next session open and reads nothing more. Since session 50; before, an extended course had nothing to approve.
 */
@Injectable()
export class PlansExtended {
  private readonly logger = new Logger(PlansExtended.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly infusions: InfusionEventsProducer,
    private readonly pollCursors: PollCursors,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  /**
   * The 15-minute sweep's look for a server that does not notify plan changes (or a notification lost): every active
   * plan changed since the last look (`_lastUpdated`, from a cursor in Redis) is heard as its notification would have
   * it. `open`: the sweep's read of the open Tasks, so a plan with an infusion session open (most plans the service
   * itself writes) reads nothing more; `heardAlready`: plans the sweep has just heard (made active again). Since
   * session 53; before, an active plan the EHR extended with nothing notified had nothing proposed for its new end.
   */
  async lookAgain(
    open: OpenTasks,
    now = new Date(),
    heardAlready: readonly string[] = [],
  ): Promise<{ plans: number; proposedAgain: number; followedUpAgain: number }> {
    const cursor = await this.pollCursors.ofSweep(CHANGED_PLANS_CURSOR);
    const outcome = { plans: 0, proposedAgain: 0, followedUpAgain: 0 };
    await pollFromCursor(
      { ...cursor, first: startCursor(new Date(now.getTime() - FIRST_LOOK_BACK_MS)) },
      (from) =>
        this.fhir.searchAll<CarePlan>('CarePlan', {
          status: 'active',
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 200,
        }),
      async (changed) => {
        for (const plan of changed) {
          // Plans of a protocol (an EHR's care episode on the same server instantiates none): the others propose nothing.
          if (heardAlready.includes(plan.id!) || !plan.instantiatesCanonical?.length) continue;
          outcome.plans++;
          try {
            // A write that lost a race to the plan's change is left to the next look at it (its notification, or this).
            const heard = await this.heard(plan.id!, openTasksOfPlan(open, `CarePlan/${plan.id}`), now, 'skip');
            outcome.proposedAgain += heard.proposedAgain;
            outcome.followedUpAgain += heard.followedUpAgain;
          } catch (err) {
            // The server down: the cursor stays, for the next sweep. One plan refused (a 4xx) does not stop the others.
            if (err instanceof FhirUnavailableError) throw err;
            this.logger.warn({ msg: 'changed plan not looked at', carePlan: plan.id, error: (err as Error).message });
          }
        }
      },
    );
    return outcome;
  }

  /**
   * `raced`: a write that lost a race to a change of the plan fails (a notification's job, to run again), or is left to
   * the plan's next look (the sweep).
   */
  async heard(
    carePlanId: string,
    open: OpenTasks,
    now = new Date(),
    raced: RaceHandling = 'fail',
  ): Promise<{ proposedAgain: number; followedUpAgain: number }> {
    const openTasks = [...open.awaiting, ...open.approved, ...open.held];
    if (openTasks.some((t) => t.focus?.reference?.startsWith('MedicationRequest/')))
      return { proposedAgain: 0, followedUpAgain: 0 };
    const ref = `CarePlan/${carePlanId}`;
    const { read, found } = await readAndSearchEach(
      this.fhir,
      [`CarePlan/${encodeURIComponent(carePlanId)}`],
      [
        // Every status: the withdrawn ones, and those proposed again already, whatever became of them since (done,
        // rejected: clinic day seed 3254 proposed one again each time its replacement was closed).
        {
          name: 'tasks',
          resourceType: 'Task',
          params: { 'based-on': ref, _include: 'Task:focus', _count: 200 },
          everyMatch: true,
        },
        {
          name: 'latest',
          resourceType: 'Procedure',
          params: { 'based-on': ref, status: 'completed', _sort: '-date', _count: 1 },
        },
      ],
    );
    const carePlan = read[0] as CarePlan | undefined;
    if (!carePlan || !carePlanHoldsCare(carePlan).ok) return { proposedAgain: 0, followedUpAgain: 0 };
    const proposals = new Map(
      includedOf<AuthorisableRequest>(found.tasks)
        .filter(isAuthorisable)
        .map((r) => [`${r.resourceType}/${r.id}`, r] as const),
    );
    const again = sessionsProposedAgainForNewEnd({
      carePlan,
      tasks: [...matchesOf<Task>(found.tasks), ...openTasks],
      proposals,
      now,
      zone: this.config.clinicTimeZone,
    });
    if (again.length && !(await this.write(carePlan, again, now, raced)))
      return { proposedAgain: 0, followedUpAgain: 0 };
    // The sessions its follow-up left out for the old end: proposed by the follow-up run again (by their keys, once).
    const [latest] = matchesOf<Procedure>(found.latest);
    if (latest?.id) await this.infusions.followUpAgain(latest.id);
    if (again.length)
      this.logger.log({
        msg: 'sessions proposed again: their plan’s end moved',
        carePlan: carePlanId,
        again: again.length,
      });
    return { proposedAgain: again.length, followedUpAgain: latest?.id ? 1 : 0 };
  }

  /** One transaction: the new proposals and Tasks, the plan listing them (If-Match: a change meanwhile fails the job). */
  private async write(carePlan: CarePlan, again: ProposedAgain[], now: Date, raced: RaceHandling): Promise<boolean> {
    const listed =
      withListedActivities(
        carePlan,
        again.map((p) => p.fullUrl),
      ) ?? carePlan;
    const provenance = changeProvenance({
      targets: [{ reference: `CarePlan/${carePlan.id}` }, ...again.map((p) => ({ reference: p.fullUrl }))],
      revisionOf: { reference: `CarePlan/${carePlan.id}/_history/${carePlan.meta?.versionId}` },
      who: THIS_SERVICE,
      activity: 'propose again for the plan’s new end',
      now,
      reason: again[0].task.statusReason?.text,
    });
    try {
      await this.fhir.transaction([
        ...proposedAgainEntries(again),
        updateEntry(listed, carePlan.meta?.versionId),
        { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
      ]);
      return true;
    } catch (err) {
      if (!skipsStaleWrite(err, raced)) throw err;
      return false;
    }
  }
}
