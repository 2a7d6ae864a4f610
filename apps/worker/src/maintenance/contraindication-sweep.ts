import { Injectable, Logger } from '@nestjs/common';
import type { CarePlan, Condition, DetectedIssue, Observation, Task } from '@medplum/fhirtypes';
import { isResourceId } from '@kc/common';
import { FhirClient, type RaceHandling } from '@kc/fhir';
import { carePlanHoldsCare, carePlanReferenceOf } from '@kc/followups';
import { ContraindicationRecorder, OrderHolds, personRecordsOf, PlanDefinitions } from '@kc/nest-core';
import { contraindicationState, hasContraindicationChecks, isProtocolNotFound, protocolActionOf } from '@kc/protocols';
import { patientIdOf, THIS_SERVICE } from '@kc/task-states';
import { CompletedTaskEventsProducer } from '@kc/queue';
import { ClinicAlerts } from '../alerts/clinic-alerts.service';
import { RateNoticeAlerts } from '../alerts/rate-notice-alerts';
import { OpenTasksReader, type OpenTasks } from './open-tasks';
import { ProtocolNotFoundIssues } from './protocol-not-found-issues';

/**
 * A notified record's check (a job): a hold that lost a race to a change made meanwhile fails the job, which BullMQ runs
 * again in seconds, reading again, instead of leaving the orders to give until the next sweep.
 */
const RACES_FAIL_THE_JOB: RaceHandling = 'fail';

/** What a run did: plans checked, contraindications recorded, orders held and released, clinic alerts sent. */
export interface SweepOutcome {
  plans: number;
  recorded: number;
  held: number;
  released: number;
  alerted: number;
}

/** A plan with Tasks awaiting approval or approved ones not done: what the sweep needs to check it. */
interface WaitingPlan {
  carePlan: CarePlan;
  patientId: string;
  /** The actions of its open Tasks. */
  actionIds: Set<string>;
  /** Its approved Tasks not done yet: their orders are what a contraindication found now holds. */
  approved: Task[];
  /** Its Tasks held for a contraindication: held again by a new issue where the one that held them was deleted. */
  held: Task[];
  issues: DetectedIssue[];
}

/**
 * The contraindication checks, asked again for every plan with Tasks awaiting approval or approved and not done
 * (with the overdue sweep, OVERDUE_SWEEP_CRON): a pregnancy or a blood pressure recorded since the Tasks were
 * proposed is recorded as the plan's DetectedIssue, so the clinician page shows it before anyone tries to approve
 * (the approval itself checks again, and refuses), and the orders already approved under the plan are held
 * (OrderHolds) until a clinician overrides it. One read of the open Tasks with their plans and issues, then one
 * batch of patient data per plan whose Tasks a check gates; nothing is written for a plan that is clear.
 */
@Injectable()
export class ContraindicationSweep {
  private readonly logger = new Logger(ContraindicationSweep.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly plans: PlanDefinitions,
    private readonly recorder: ContraindicationRecorder,
    private readonly reader: OpenTasksReader,
    private readonly holds: OrderHolds,
    private readonly alerts: ClinicAlerts,
    private readonly rateNoticeAlerts: RateNoticeAlerts,
    private readonly sessions: CompletedTaskEventsProducer,
    private readonly protocolNotFound: ProtocolNotFoundIssues,
  ) {}

  /**
   * Every plan with Tasks awaiting approval or approved and not done (with the overdue sweep), or those of a read
   * already made. A plan with approved Tasks costs one batch of patient data per run, like a waiting one.
   */
  async sweep(now = new Date(), waiting?: OpenTasks): Promise<SweepOutcome> {
    const outcome = await this.check(waiting ?? (await this.reader.all()), now);
    // The notices that alerts are dealt with, looked at again whatever the issues' plans hold (their jobs send them);
    // and the rate notices' alerts whose jobs gave up, and the notices that those which ended are dealt with.
    await this.alerts.noticeLatelyResolved(now);
    const rateAlerts = await this.rateNoticeAlerts.lookAgainAtRateNotices(now);
    return { ...outcome, alerted: outcome.alerted + rateAlerts };
  }

  /**
   * The plans of one record's patient, when a notification says a Condition or an Observation changed (a pregnancy
   * recorded, a blood pressure taken): checked now rather than at the next sweep. A record that is gone, or names
   * no patient, checks nothing. `CarePlan/<id>`: that plan, which an infusion event found contraindicated.
   */
  async recheckFor(reference: string, now = new Date()): Promise<SweepOutcome> {
    const none = { plans: 0, recorded: 0, held: 0, released: 0, alerted: 0 };
    const [type, id] = reference.split('/');
    if (!isResourceId(id)) return none;
    // A plan a follow-up found contraindicated, or whose check reported an effect: its approved orders are held now.
    if (type === 'CarePlan') {
      const waiting = await this.reader.read({ 'based-on': `CarePlan/${id}` });
      const outcome = await this.check(waiting, now, RACES_FAIL_THE_JOB);
      // A plan with no open Task has no issues in that read; an effect reported on it is still the clinic's to hear of.
      if (waiting.issues.has(reference)) return outcome;
      const issues = await this.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: reference });
      return { ...outcome, alerted: outcome.alerted + (await this.alerts.tell(issues, now)) };
    }
    if (type !== 'Condition' && type !== 'Observation') return none;
    const record = await this.fhir.readIfExists<Condition | Observation>(type, id);
    const patient = record?.subject?.reference;
    if (!patient || !/^Patient\/[^/]+$/.test(patient)) return none;
    // The plans under every record of the person (a merge may have left them under the record merged away: since
    // session 48; before, those waited for the sweep). One read of the patient's record.
    const records = await personRecordsOf(this.fhir, patient);
    return this.check(await this.reader.read({ patient: records.join(',') }), now, RACES_FAIL_THE_JOB);
  }

  private async check(read: OpenTasks, now: Date, raced: RaceHandling = 'skip'): Promise<SweepOutcome> {
    const waiting = { ...read, issues: await this.resolveWhereFound(read, now) };
    let plans = 0;
    let recorded = 0;
    let held = 0;
    const unreadable = new Set<string>();
    // The issues as the holds wrote them: implicating the orders held, which the clinic is told of.
    const holding: DetectedIssue[] = [];
    for (const { carePlan, patientId, actionIds, approved, held: heldTasks, issues } of waitingPlans(
      waiting,
    ).values()) {
      // The catalog's protocols, and those an EHR posted or sent inline (kept on the FHIR server).
      const resolved = await this.plans.ofCarePlan(carePlan);
      if (!resolved) {
        const canonical = carePlan.instantiatesCanonical?.[0] ?? 'none';
        unreadable.add(canonical);
        // Nothing tells whether its approved orders are contraindicated now: held, as a contraindication holds them.
        if (!approved.length && !heldTasks.length) continue;
        const notFound = await this.protocolNotFound.record({ carePlan, patientId, canonical, issues }, now);
        if (!notFound) continue;
        const { issue } = notFound;
        if (notFound.created) recorded++;
        const outcome = await this.holds.hold(
          {
            carePlanId: carePlan.id!,
            issues: [...issues.filter((i) => i.id !== issue.id), issue],
            approvedTasks: approved,
            heldTasks,
          },
          now,
          raced,
        );
        held += outcome.held;
        holding.push(...outcome.issues);
        continue;
      }
      const { plan, definitions } = resolved;
      const gated = [...actionIds].filter((id) => hasContraindicationChecks(plan, id, definitions));
      if (!gated.length) continue;
      const ordered = [...approved, ...heldTasks].some((t) => gated.includes(protocolActionOf(t)!));
      plans++;
      const found = await this.recorder.record(
        {
          plan,
          resolver: definitions,
          carePlan,
          patientId,
          actionIds: gated,
          issues,
          foundWhen: ordered
            ? 'on the patient’s data after orders under it were approved'
            : 'on the patient’s data while Tasks awaited approval',
        },
        now,
      );
      recorded += found.filter((f) => f.created).length;
      // Found now or on record since an earlier sweep (a hold that lost a race with a clinician is tried again).
      if (approved.length || heldTasks.length) {
        const outcome = await this.holds.hold(
          {
            carePlanId: carePlan.id!,
            protocol: { plan, resolver: definitions },
            issues: [...issues, ...found.map((f) => f.issue).filter((f) => !issues.some((i) => i.id === f.id))],
            approvedTasks: approved,
            heldTasks,
          },
          now,
          raced,
        );
        held += outcome.held;
        holding.push(...outcome.issues);
      }
    }
    if (recorded || held) this.logger.warn({ msg: 'contraindications found on open plans', recorded, held, plans });
    // Their approvals are refused (nothing to check them against); the protocols are named, no patient.
    if (unreadable.size)
      this.logger.warn({ msg: 'plans not checked: their protocol is not found', protocols: [...unreadable] });
    const released = await this.releaseClearPlans(waiting, now, raced);
    // Effects reported at a check and not reviewed yet, and contraindications holding approved orders: the clinic is
    // emailed of each once (this job is queued when one is recorded, and the sweep looks again). A hold's issues last:
    // they are the versions naming the orders.
    const alerted = await this.alerts.tell([...[...waiting.issues.values()].flat(), ...holding], now);
    return { plans, recorded, held, released, alerted };
  }

  /**
   * The plans' issues, a protocol-not-found one resolved where the plan's protocol is found again (posted again on the
   * FHIR server): its patient is checked against it as before, and the holds it alone kept are released below.
   */
  private async resolveWhereFound({ issues, carePlans }: OpenTasks, now: Date): Promise<Map<string, DetectedIssue[]>> {
    const current = new Map(issues);
    for (const [ref, planIssues] of issues) {
      const carePlan = carePlans.get(ref);
      const waitsForProtocol = planIssues.some(
        (i) => isProtocolNotFound(i) && contraindicationState(i) === 'unresolved',
      );
      if (!carePlan || !waitsForProtocol || !(await this.plans.ofCarePlan(carePlan))) continue;
      current.set(ref, await this.protocolNotFound.resolveFound(planIssues, now));
      this.logger.log({ msg: 'protocol found again: its plan is checked as before', carePlan: carePlan.id });
    }
    return current;
  }

  /**
   * Holds whose plan no longer has an unresolved contraindication (its override's release cut short, or the issue
   * resolved on the FHIR server by someone else) are lifted, the service named as who released them.
   */
  private async releaseClearPlans({ held, issues }: OpenTasks, now: Date, raced: RaceHandling): Promise<number> {
    const plans = new Set(held.map(carePlanReferenceOf).filter((r): r is string => Boolean(r)));
    const released: Task[] = [];
    for (const carePlan of plans) {
      if ((issues.get(carePlan) ?? []).some((i) => contraindicationState(i) === 'unresolved')) continue;
      released.push(
        ...(await this.holds.releaseIfClear({
          carePlan,
          who: THIS_SERVICE,
          reason: 'No contraindication on its plan is unresolved any more',
          now,
          raced,
        })),
      );
    }
    if (released.length) {
      this.logger.log({ msg: 'released holds of plans now clear', released: released.length });
      // Booked from an appointment the scheduling system wrote while they were held (the job's retries cover a blip).
      await this.sessions.enqueueBookableSessions(released);
    }
    return released.length;
  }
}

/**
 * The plans (still holding care) with Tasks awaiting approval or approved and not done, each with its patient, the
 * Tasks' actions, its approved Tasks and its issues.
 */
function waitingPlans({ awaiting, approved, held, carePlans, issues }: OpenTasks): Map<string, WaitingPlan> {
  const waiting = new Map<string, WaitingPlan>();
  const approvedIds = new Set(approved.map((t) => t.id));
  const heldIds = new Set(held.map((t) => t.id));
  for (const task of [...awaiting, ...approved, ...held]) {
    const ref = carePlanReferenceOf(task);
    const carePlan = ref ? carePlans.get(ref) : undefined;
    const actionId = protocolActionOf(task);
    const patientId = patientIdOf(task);
    if (!ref || !carePlan || !actionId || !patientId || !carePlanHoldsCare(carePlan).ok) continue;
    const entry = waiting.get(ref) ?? {
      carePlan,
      patientId,
      actionIds: new Set<string>(),
      approved: [],
      held: [],
      issues: issues.get(ref) ?? [],
    };
    entry.actionIds.add(actionId);
    if (approvedIds.has(task.id)) entry.approved.push(task);
    if (heldIds.has(task.id)) entry.held.push(task);
    waiting.set(ref, entry);
  }
  return waiting;
}
