import { Inject, Injectable, Logger } from '@nestjs/common';
import type { CommunicationRequest, Patient, Procedure, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, skipsStaleWrite, type RaceHandling } from '@kc/fhir';
import {
  approvedOnEndedPlans,
  carePlanReferenceOf,
  isRecordedDeceased,
  patientsKeepingChecks,
  givenSessionWrites,
  requestWrites,
  sessionGivenAtThePump,
  sessionsGivenOnStoppedPlans,
  withdrawalsForStoppedPlans,
  type GivenOnStoppedPlan,
} from '@kc/followups';
import type { OpenOrder } from '@kc/task-states';
import { OpenTasksReader, type OpenTasks } from './open-tasks';
import { ordersAndRemindersOf, serviceChangeEntries, withdrawCrossedOrders } from './withdrawal-writes';

/**
 * Withdraws the open Tasks of plans an EHR stopped (withdrawalsForStoppedPlans): awaiting approval with their draft
 * proposals, approved with their orders still to be given, each with its reminders not sent and a Provenance naming
 * the service as the author, in one transaction with If-Match on every write: a clinician's decision made meanwhile
 * wins, and the Task is looked at again next time. Runs with the overdue sweep (OVERDUE_SWEEP_CRON), and for one plan
 * when a Subscription notifies a CarePlan change; until then the approval guard refuses them. A session the pump has
 * begun is left to its infusion; since session 41, one the pump gave during an infusion already on record (the eMAR
 * charting it after the infusion's follow-up ran) is answered here, as that follow-up would have.
 */
@Injectable()
export class StoppedPlanSweep {
  private readonly logger = new Logger(StoppedPlanSweep.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly reader: OpenTasksReader,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  /**
   * Every open Task (with the overdue sweep, OVERDUE_SWEEP_CRON), or those of a read already made. `raced: 'fail'` (a
   * job told of the plan): a withdrawal that lost a race fails, for the job to run again. `deceased`: patients known
   * to be recorded as deceased (a death heard: its person's records), whose checks go too.
   */
  async sweep(
    now = new Date(),
    open?: OpenTasks,
    raced: RaceHandling = 'skip',
    deceased: ReadonlySet<string> = new Set(),
  ): Promise<{ withdrawn: number; answered: number; checked: number }> {
    return this.withdraw(open ?? (await this.reader.all()), now, raced, deceased);
  }

  private async withdraw(
    open: OpenTasks,
    now: Date,
    raced: RaceHandling,
    deceasedKnown: ReadonlySet<string>,
  ): Promise<{ withdrawn: number; answered: number; checked: number }> {
    const { carePlans, proposals } = open;
    const tasks = [...open.awaiting, ...open.approved, ...open.held];
    const deceased = new Set([...deceasedKnown, ...(await this.deceasedKeepingChecks(tasks, open, deceasedKnown))]);
    // The approved Tasks of stopped plans (few: each is withdrawn once) have orders and reminders to read.
    const zone = this.config.clinicTimeZone;
    const approved = approvedOnEndedPlans(tasks, carePlans, zone, deceased);
    const { orders, reminders } = await ordersAndRemindersOf(this.fhir, approved);
    let withdrawn = 0;
    const ordersWithdrawn: { task: Task; reason: string }[] = [];
    const withdrawals = withdrawalsForStoppedPlans({
      tasks,
      carePlans,
      proposals,
      orders,
      reminders,
      now,
      zone,
      deceased,
    });
    for (const w of withdrawals) {
      const writes = [{ resource: w.withdrawn, read: w.task }, ...requestWrites(w)];
      // Who withdrew it and why, in the same transaction: the service, not a clinician.
      try {
        await this.fhir.transaction(
          serviceChangeEntries(writes, w.task, { activity: 'withdraw', reason: w.withdrawn.statusReason?.text }, now),
        );
        withdrawn++;
        if (w.order) ordersWithdrawn.push({ task: w.withdrawn, reason: w.withdrawn.statusReason?.text ?? 'Withdrawn' });
      } catch (err) {
        if (!skipsStaleWrite(err, raced)) throw err;
      }
    }
    await this.withdrawCrossed(ordersWithdrawn, now);
    const answered = await this.answerGiven(approved, open, orders, reminders, now, raced);
    if (withdrawn) this.logger.log({ msg: 'withdrew tasks of stopped plans', withdrawn, checked: tasks.length });
    return { withdrawn, answered, checked: tasks.length };
  }

  /**
   * The EHR's replacements of the orders just withdrawn written meanwhile (withdrawCrossedOrders). A failure is logged
   * and leaves them to the reconciliation of closed Tasks' orders (ClosingsCrossedByTheEhr, since session 58): this
   * sweep reads open sessions only.
   */
  private async withdrawCrossed(withdrawn: { task: Task; reason: string }[], now: Date): Promise<void> {
    try {
      const closed = await withdrawCrossedOrders(this.fhir, withdrawn, now);
      if (closed) this.logger.log({ msg: 'withdrew orders the EHR wrote during a withdrawal', orders: closed });
    } catch (err) {
      this.logger.warn({ msg: 'orders the EHR wrote during a withdrawal left open', error: String(err) });
    }
  }

  /**
   * The patients recorded as deceased among those of the checks that outlive their plans (patientsKeepingChecks) not
   * known to be already (a death's job passes its person's records): one read, only when there are such checks. A
   * check proposed under a closed plan as its patient's death was heard (the follow-up read the patient alive; nothing
   * else they both write) is withdrawn here, at the next look.
   */
  private async deceasedKeepingChecks(tasks: Task[], open: OpenTasks, known: ReadonlySet<string>): Promise<string[]> {
    const patients = patientsKeepingChecks(tasks, open.carePlans).filter((p) => !known.has(p));
    if (!patients.length) return [];
    const read = await this.fhir.searchAll<Patient>('Patient', {
      _id: patients.map((p) => p.slice('Patient/'.length)).join(','),
      _count: 200,
    });
    return read.filter(isRecordedDeceased).map((p) => `Patient/${p.id}`);
  }

  /**
   * The sessions of stopped plans the pump gave during an infusion on record (sessionsGivenOnStoppedPlans): one search
   * of their plans' infusions, only when the pump's record says it gave one; each answered in one transaction with
   * If-Match, with a Provenance naming the service, the pump's record and the infusion.
   */
  private async answerGiven(
    approved: Task[],
    open: OpenTasks,
    orders: Map<string, OpenOrder>,
    reminders: CommunicationRequest[],
    now: Date,
    raced: RaceHandling,
  ): Promise<number> {
    const given = approved.filter((t) => t.id && sessionGivenAtThePump(orders.get(t.id)));
    const plans = [...new Set(given.map(carePlanReferenceOf).filter((r): r is string => Boolean(r)))];
    if (!plans.length) return 0;
    const infusions = await this.fhir.searchAll<Procedure>('Procedure', {
      'based-on': plans.join(','),
      status: 'completed',
      _count: 200,
    });
    let answered = 0;
    for (const g of sessionsGivenOnStoppedPlans({
      tasks: given,
      carePlans: open.carePlans,
      orders,
      infusions,
      reminders,
      now,
      zone: this.config.clinicTimeZone,
    })) {
      try {
        await this.fhir.transaction(answerEntries(g, now));
        answered++;
      } catch (err) {
        if (!skipsStaleWrite(err, raced)) throw err;
      }
    }
    if (answered) this.logger.log({ msg: 'sessions the pump gave under stopped plans answered', answered });
    return answered;
  }
}

/** A given session's writes, with a Provenance naming what showed it was given: the pump's record and the infusion. */
function answerEntries(g: GivenOnStoppedPlan, now: Date) {
  const writes = [{ resource: g.task.written, read: g.task.read }, ...givenSessionWrites(g)];
  return serviceChangeEntries(
    writes,
    g.task.read,
    {
      activity: 'given at the pump',
      reason: `Given at the pump during the ${g.infusion.display ?? g.infusion.reference}, under a plan stopped since`,
      sources: [`MedicationAdministration/${g.administration.id}`, g.infusion.reference!],
    },
    now,
  );
}
