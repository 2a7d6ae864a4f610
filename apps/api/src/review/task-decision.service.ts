import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Dosage, MedicationRequest, Period, Reference, Task } from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';
import { conflict, OutcomeException, unprocessable } from '@kc/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, updateEntry } from '@kc/fhir';
import {
  carePlanReferenceOf,
  dueOutsideProtocolWindow,
  isSameDrugOrder,
  orderedElsewhereForSession,
  orderInWords,
  ordersOfOtherPlans,
  sessionsOfOtherPlansAt,
} from '@kc/followups';
import { openOrdersOfSessions, orderEvenIfDeleted, ordersReplacedBy } from '@kc/nest-core';
import { clinicPeriod, dosageToOrder, orderedBolusPerKg, orderedRatePerKg, protocolWindowOf } from '@kc/protocols';
import { CompletedTaskEventsProducer } from '@kc/queue';
import {
  approvedOnOrder,
  claimedBySession,
  isApproved,
  isTaskHeldForContraindication,
  openOrdersOfSession,
  isReturnedForReview,
  orderFromProposal,
  orderKeyFor,
  orderKeySearch,
  ordersOfOtherSessions,
  orderTaskIdOf,
  replacementsOfOtherSessions,
  sessionBegunBy,
} from '@kc/task-states';
import { assertClearOf } from './contraindication-guard';
import { CrossedEhrOrders } from './crossed-ehr-orders';
import { CurrentContraindications } from './current-contraindications';
import { approve, holdsWhatWasAsked, reject, reschedule } from './task-decisions';
import { TaskReminders } from './task-reminders';
import { assertAuthorisable, assertWithinPlan, readTaskUnderReview, type Proposal } from './task-under-review';
import { PatientRecordGuard } from '../protocols/patient-record-guard';
import { cancelledEntry, DecisionWriter, type Consequence } from './task-review.service';

/** A rate per kg a clinician asks for (`$approve`'s `rate`), or a bolus per kg (`bolus`). */
export interface AskedRate {
  value: number;
  unit: string;
}

/** What a clinician asks an infusion's order to give, besides the proposal's dose. */
export interface AskedDose {
  rate?: AskedRate;
  bolus?: AskedRate;
}

export interface DecisionInput {
  taskId: string;
  seenVersion: string;
  caller: Caller;
}

/**
 * An approval's `alongside`: orders of the drug the EHR has for the session's time that the clinician means the new
 * order to stand beside (orderedElsewhereForSession names them in the refusal). Any other such order refuses it.
 */
export interface Alongside {
  alongside?: string[];
}

/**
 * An approval's `onOrder`: the order the EHR already has for this session (written outside this service), on which
 * the approval rests instead of writing one: the session is tracked here, given under the EHR's order.
 */
export interface OnOrder {
  onOrder?: string;
}

/** An approval's reason for a Task due outside its protocol window (outsideWindow). */
export interface OutsideWindow {
  outsideWindowReason?: string;
}

/**
 * A clinician's decision on a generated Task and what it means for the request the Task authorises: approval
 * (or a reschedule, which approves for the new window) creates the active order, signed by the approving
 * practitioner; rejection cancels the proposal. Refused while a contraindication on the plan is unresolved.
 */
@Injectable()
export class TaskDecisionService {
  constructor(
    private readonly writer: DecisionWriter,
    private readonly fhir: FhirClient,
    private readonly reminders: TaskReminders,
    private readonly contraindications: CurrentContraindications,
    private readonly sessions: CompletedTaskEventsProducer,
    private readonly patientRecord: PatientRecordGuard,
    private readonly crossed: CrossedEhrOrders,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  private readonly logger = new Logger(TaskDecisionService.name);

  /**
   * `rate`: an infusion's rate per kg the clinician orders (titration), instead of the proposal's; `bolus`: a bolus
   * per kg at its start.
   */
  async approve(
    input: DecisionInput & AskedDose & Alongside & OnOrder & OutsideWindow & { owner?: Task['owner'] },
  ): Promise<Task> {
    const { owner, onOrder } = input;
    const change = (t: Task) => {
      const approved = approve(t, owner, new Date());
      return onOrder ? approvedOnOrder(approved, onOrder) : approved;
    };
    const approved = await this.authorise(input, 'approve', change, {
      dose: input,
      asked: async (t) =>
        (!owner || holdsWhatWasAsked.owner(t, owner)) &&
        (!onOrder || holdsWhatWasAsked.onOrder(t, onOrder)) &&
        (await this.orderedAsAsked(t, input)),
    });
    await this.bookIfAppointed(approved);
    return approved;
  }

  /**
   * An infusion session approved: the worker looks for an appointment the scheduling system booked for it while it
   * awaited approval (which could not book it then). The approval stands if the queue is down; the session is then
   * booked when its appointment is next written.
   */
  private async bookIfAppointed(task: Task): Promise<void> {
    try {
      await this.sessions.enqueueBookableSessions([task]);
    } catch (err) {
      this.logger.warn({ msg: 'approved session not queued for its appointment', task: task.id, error: String(err) });
    }
  }

  /** A reschedule approves the Task for its new window, so it authorises care like an approval. */
  reschedule(input: DecisionInput & AskedDose & Alongside & { window: Period }): Promise<Task> {
    const { window } = input;
    return this.authorise(input, 'reschedule', (t) => reschedule(t, window, new Date(), this.config.clinicTimeZone), {
      dose: input,
      asked: async (t) => holdsWhatWasAsked.window(t, window) && (await this.orderedAsAsked(t, input)),
    });
  }

  private async authorise(
    input: DecisionInput & Alongside & OnOrder & OutsideWindow & { window?: Period },
    decision: string,
    change: (task: Task) => Task,
    { asked, dose: { rate, bolus } }: { asked: (task: Task) => boolean | Promise<boolean>; dose: AskedDose },
  ): Promise<Task> {
    const under = await readTaskUnderReview(this.writer, input.taskId);
    const { task, proposal, carePlan, issues } = under;
    await this.patientRecord.assertRecordFound(under.task.for?.reference, under.patient);
    const links = await this.patientRecord.assertNotDeceased(under.patient);
    assertAuthorisable(under, input.caller);
    assertWithinPlan(under, input.window ?? task.restriction?.period, this.config.clinicTimeZone);
    // Those on record passed; the patient's data may show one since (a pregnancy recorded after enrolment).
    const checked = await this.contraindications.found(task, carePlan, issues, proposal, links);
    assertClearOf(carePlanReferenceOf(task), checked.found);
    // A reschedule stays within the protocol window (its own check); an approval keeps the window the Task has.
    const outside = decision === 'approve' ? this.outsideWindow(task, input) : undefined;
    const what = rate ? 'rate' : 'bolus';
    // Its approval's order is written: active, or held with the Task for a contraindication (a held Task whose issue is
    // resolved may be rescheduled before the hold is released, and must not get a second order).
    const ordered = isApproved(task) || isTaskHeldForContraindication(task);
    if ((rate || bolus) && !proposal)
      throw unprocessable(`This task orders no medication: approve it without a ${what}`);
    // Approved before, at the version this clinician saw (not a retry of theirs): its order is written already.
    if ((rate || bolus) && ordered && task.meta?.versionId === input.seenVersion)
      throw unprocessable(
        `This task was approved before: its order is written. Send it without a ${what}, and change the dose with $change-dose (Change dose on the to-do list).`,
      );
    // Returned for review when the EHR closed its order, then ordered in the EHR after all (a replacement written late):
    // the approval rests on that order, not a second one for the same session.
    const inEhr = proposal?.resourceType === 'MedicationRequest' && isReturnedForReview(task);
    const orderedInEhr = inEhr ? await this.orderedInEhrSince(task) : undefined;
    if ((rate || bolus) && orderedInEhr)
      throw unprocessable(
        `The EHR has ordered this session since its order was closed (${orderInWords(orderedInEhr, undefined, this.config.clinicTimeZone)}): approve it without a ${what}, and change its dose in the EHR.`,
        [`MedicationRequest/${orderedInEhr.id}`],
      );
    // A Task approved before (then rescheduled) already has its order: a rate sent for it again is the writer's to
    // judge (the same approval retried is answered as done, anything else refused).
    // Approved on the EHR's own order for the session: that order must be one of the drug, open, for this patient.
    // The EHR's orders other sessions were approved on: theirs, one dose each (not this one's, nor a duplicate of it).
    const theirs = new Set([
      ...ordersOfOtherSessions(checked.openOrderSessions ?? [], task.id),
      // And the EHR's replacements of another session's order (since session 48: clinic day seed 2949).
      ...(await this.replacementsOfOtherSessions(checked.openOrders ?? [], checked.openOrderSessions ?? [], task.id)),
    ]);
    const onOrder = input.onOrder && !ordered ? this.ehrOrderFor(input.onOrder, proposal, checked, theirs) : undefined;
    if ((rate || bolus) && onOrder)
      throw unprocessable(
        `Approved on the EHR's order (${input.onOrder}), the session is given at its dose: approve it without a ${what}, and change the dose in the EHR.`,
      );
    const ordering = proposal && !ordered && !orderedInEhr && !onOrder;
    // The drug ordered in the EHR for this session's time, outside this care plan: a second order gives it twice.
    if (ordering && proposal.resourceType === 'MedicationRequest') {
      const alongside = new Set(input.alongside ?? []);
      const elsewhere = orderedElsewhereForSession(task, proposal, checked.openOrders ?? []).filter(
        (o) => !alongside.has(`MedicationRequest/${o.id}`) && !theirs.has(`MedicationRequest/${o.id}`),
      );
      // Issue code `duplicate`, the orders in `expression`: what the page offers to approve on, or alongside. The
      // words are the clinician's (no ids: one more issue per order pairs its words with its reference); how to ask
      // for either, the integrator's (`diagnostics`).
      if (elsewhere.length) {
        const refs = elsewhere.map((o) => `MedicationRequest/${o.id}`);
        throw new OutcomeException(
          409,
          'duplicate',
          `Already ordered outside this care plan for this session's time: ${elsewhere.map((o) => orderInWords(o, undefined, this.config.clinicTimeZone)).join('; ')}. Approving would order the session twice: approve it on that order if it is this session's, cancel that order in the EHR, or reject this task.`,
          refs,
          `Send "onOrder": "${refs[0]}" to approve the session on the EHR's order (no order is written), or "alongside": ${JSON.stringify(refs)} if both orders are meant.`,
          elsewhere.map((o, i) => ({
            severity: 'information',
            code: 'duplicate',
            details: { text: orderInWords(o, undefined, this.config.clinicTimeZone) },
            expression: [refs[i]],
          })),
        );
      }
    }
    // A reschedule of a session approved already is compared too, at its new window (its order stands, for new days).
    if (proposal?.resourceType === 'MedicationRequest' && (ordering || decision === 'reschedule'))
      await this.assertNoOtherPlanAt(task, proposal, checked, input, decision);
    const dose = ordering
      ? dosageToOrder({
          proposal,
          activity: checked.activity,
          asked: rate,
          bolus,
          variables: checked.variables,
          zone: this.config.clinicTimeZone,
        })
      : {};
    if (dose.refusal) throw unprocessable(dose.refusal);
    const reminders = await this.reminders.contextFor(task, carePlan);
    return this.writer.write({
      current: task,
      seenVersion: input.seenVersion,
      caller: input.caller,
      decision,
      reason: outside,
      change,
      asked,
      consequences: [
        ...(ordering ? [(updated: Task) => this.order(updated, proposal, input.caller, dose)] : []),
        // The EHR's order it is approved on, tagged If-Match on the version read: of two sessions approved on it at once,
        // one lands (the other's write finds it changed and is refused).
        ...(onOrder ? [() => updateEntry(claimedBySession(onOrder), onOrder.meta?.versionId)] : []),
        (updated: Task) => this.reminders.afterApproval(updated, reminders),
      ],
    });
  }

  /**
   * The patient's other care plans' sessions approved for days this session's window shares (their orders this
   * service's, so the EHR-order check above cannot see them): approving would order two infusions for the same days.
   * Refused, 409 `conflict` naming those orders, unless the clinician names them in `alongside` (both meant); a
   * reschedule at its new window, approved already or not. One
   * more read (those sessions' Tasks), only when the patient has such an order open: a patient on two plans at once.
   * Since session 45; before, a series and a maintenance plan begun early could both be approved for the same week.
   */
  private async assertNoOtherPlanAt(
    task: Task,
    proposal: MedicationRequest,
    checked: { openOrders?: MedicationRequest[] },
    input: Alongside & { window?: Period },
    decision: string,
  ): Promise<void> {
    const alongside = new Set(input.alongside ?? []);
    const orders = ordersOfOtherPlans(task, proposal, checked.openOrders ?? []).filter(
      (o) => !alongside.has(`MedicationRequest/${o.id}`),
    );
    if (!orders.length) return;
    const sessions = await this.fhir.searchAll<Task>('Task', {
      _id: [...new Set(orders.map(orderTaskIdOf))].join(','),
      _count: 100,
    });
    const same = sessionsOfOtherPlansAt(input.window ?? task.restriction?.period, orders, sessions);
    if (!same.length) return;
    const zone = this.config.clinicTimeZone;
    const words = same.map(({ order, session }) => orderInWords(order, session.restriction?.period, zone));
    const refs = same.map(({ order }) => `MedicationRequest/${order.id}`);
    const [doing, verb] =
      decision === 'reschedule' ? ['Rescheduling it there', 'reschedule'] : ['Approving', 'approve'];
    throw new OutcomeException(
      409,
      'conflict',
      `Another care plan of this patient has a session approved for days this one's window shares: ${words.join('; ')}. ${doing} would order two infusions for the same days: reject or reschedule one of them, or ${verb} this one beside it if both are meant.`,
      refs,
      `Send "alongside": ${JSON.stringify(refs)} to ${verb} it beside those orders.`,
      same.map(({ session }, i) => ({
        severity: 'information',
        code: 'conflict',
        details: { text: words[i] },
        expression: [refs[i], `Task/${session.id}`],
      })),
    );
  }

  /**
   * A Task due outside its protocol window (moved so in the EHR, or its infusion re-timed since) is approved there only
   * with the clinician's reason, which its Provenance records with the windows (since session 45; before, approved as
   * any other, the lists' notice aside). The protocol lets a clinician move a session within its window (PROTOCOLS.md:
   * intervals are per patient within the protocol's range); outside it is a deviation someone answers for. A Task
   * approved already (a retry, a held one) is not asked again. Undefined when within, or when either window is unknown.
   */
  private outsideWindow(task: Task, input: OutsideWindow): string | undefined {
    if (isApproved(task)) return undefined;
    const outside = dueOutsideProtocolWindow(
      task.restriction?.period,
      protocolWindowOf(task),
      this.config.clinicTimeZone,
    );
    if (!outside) return undefined;
    if (!input.outsideWindowReason)
      throw unprocessable(
        `${outside}: approving keeps it due then, outside what its protocol allows. Reschedule it within that window, or approve it there with your reason.`,
        ['Task.restriction.period'],
        'Send "outsideWindowReason" with the approval to approve it where it is due.',
      );
    return `Approved where it is due (${clinicPeriod(task.restriction!.period!, this.config.clinicTimeZone)}), ${outside.charAt(0).toLowerCase()}${outside.slice(1)}: ${input.outsideWindowReason}`;
  }

  async reject(input: DecisionInput & { reason: string }): Promise<Task> {
    const { task, proposal, carePlan } = await readTaskUnderReview(this.writer, input.taskId);
    const reminders = await this.reminders.contextFor(task, carePlan);
    // An approved Task (ready, or held for a contraindication) has its order: rejecting it withdraws the order too (every
    // one open, should an earlier build have written two), unless the pump has begun the session.
    const ordered = proposal && task.status !== 'draft';
    const orders = ordered ? await this.openOrdersOf(task) : [];
    const rejected = await this.writer.write({
      current: task,
      seenVersion: input.seenVersion,
      caller: input.caller,
      decision: 'reject',
      reason: input.reason,
      change: (t) => reject(t, input.reason, new Date()),
      asked: (t) => holdsWhatWasAsked.reason(t, input.reason),
      consequences: [
        ...(proposal && proposal.status === 'draft' ? [() => cancelledEntry(proposal, input.reason)] : []),
        ...orders.map((order) => () => cancelledEntry(order, input.reason)),
        () => this.reminders.afterRejection(reminders, input.reason),
      ],
    });
    // An order the EHR wrote for the session while this was being decided (its replacement of the order): every one
    // still open is cancelled with the rest.
    if (ordered)
      await this.crossed.closeAfter({
        task: rejected,
        caller: input.caller,
        decision: 'reject',
        crossed: () => true,
        reason: input.reason,
      });
    return rejected;
  }

  /**
   * Whether the order this Task's approval wrote gives the rate and the bolus asked for (the same approval sent again).
   * Nothing asked: true, with no read.
   */
  private async orderedAsAsked(task: Task, { rate, bolus }: AskedDose): Promise<boolean> {
    if (!rate && !bolus) return true;
    const orders = await this.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(task.id!),
    });
    return orders.some(
      (o) =>
        (!rate || orderedRatePerKg(o, rate.unit) === rate.value) &&
        (!bolus || orderedBolusPerKg(o, bolus.unit) === bolus.value),
    );
  }

  /** The EHR's open orders replacing another session's order (replacementsOfOtherSessions; ordersReplacedBy reads). */
  private async replacementsOfOtherSessions(
    open: MedicationRequest[],
    openSessions: Task[],
    taskId: string | undefined,
  ): Promise<Set<string>> {
    const { priors, tasks } = await ordersReplacedBy(
      (type, params) => this.writer.search(type, params),
      open,
      orderEvenIfDeleted(this.fhir),
    );
    return replacementsOfOtherSessions(open, priors, [...openSessions, ...tasks], taskId);
  }

  /**
   * The order `onOrder` names, when it is an open order of the proposal's drug for this patient written outside this
   * service (read with the approval's patient data); anything else is refused (422), saying why.
   */
  private ehrOrderFor(
    onOrder: string,
    proposal: Proposal | undefined,
    checked: { openOrders?: MedicationRequest[] },
    theirs: Set<string>,
  ): MedicationRequest {
    if (proposal?.resourceType !== 'MedicationRequest')
      throw unprocessable('This task orders no medication: it cannot be approved on an order');
    if (theirs.has(onOrder))
      throw conflict(
        `${onOrder} is the order of another session of this patient (approved on it): one dose answers one session. Approve this session without it, to order it here, or on an order of its own.`,
      );
    const order = (checked.openOrders ?? []).find((o) => `MedicationRequest/${o.id}` === onOrder);
    if (!order || orderTaskIdOf(order) || !isSameDrugOrder(order, proposal))
      throw unprocessable(
        `${onOrder} is not an open order of ${proposal.medicationCodeableConcept?.text ?? 'this drug'} for this patient written in the EHR: approve the session on such an order, or without one to order it here`,
      );
    return order;
  }

  /**
   * An order open now for a session returned for review: its order (approved here, or the EHR's it was approved on),
   * active again in the EHR, or one the EHR wrote replacing it (openOrdersOfSessions: at any depth). One read, for such
   * a Task's approval only (two before session 39).
   */
  private async orderedInEhrSince(task: Task): Promise<MedicationRequest | undefined> {
    return (await openOrdersOfSessions(this.fhir, [task])).get(task.id!)?.order as MedicationRequest | undefined;
  }

  /**
   * The orders the session is still to be given under (active or held: openOrdersOfSessions, whoever wrote them: the
   * order written here, or the EHR's replacement of it, and any left open beside it); refused (409) when the pump has
   * begun the session under one: it is the infusion's to finish or stop at the pump, and its record completes the Task
   * (a rejected one could not be), as a stopped plan leaves such a session to its infusion.
   */
  private async openOrdersOf(task: Task): Promise<Proposal[]> {
    const open = openOrdersOfSession((await openOrdersOfSessions(this.fhir, [task])).get(task.id!));
    const started = sessionBegunBy(open.flatMap((o) => o.administrations));
    if (started) {
      const when = started.effectivePeriod?.start ?? started.effectiveDateTime;
      throw conflict(
        `This session has begun${when ? ` (the pump recorded it at ${when})` : ''}: stop it at the pump if it must not go on; the infusion, once recorded, completes this task`,
      );
    }
    return open.map((o) => o.order as Proposal);
  }

  /**
   * The active order, written with the decision. One per Task: the decision's If-Match on the Task lets only one
   * approval through, and the key (an identifier derived from the Task) lets an EHR find it.
   */
  private order(
    task: Task,
    proposal: Proposal,
    caller: Caller,
    dose: { dosage?: Dosage[]; weighed?: Reference; weightNotice?: string },
  ): Consequence {
    const carePlan = carePlanReferenceOf(task);
    const order = orderFromProposal({
      proposal,
      dosage: dose.dosage,
      supportingInformation: dose.weighed ? [dose.weighed] : undefined,
      // The weight it was computed from is older than the protocol wants: the nurse reads it on the order.
      notes: dose.weightNotice ? [dose.weightNotice] : undefined,
      carePlan: carePlan ? { reference: carePlan } : undefined,
      requester: caller.fhirUser ? { reference: caller.fhirUser, display: caller.display } : undefined,
      now: new Date(),
      key: orderKeyFor(task.id!),
    });
    return { resource: order, request: { method: 'POST', url: order.resourceType } };
  }
}
