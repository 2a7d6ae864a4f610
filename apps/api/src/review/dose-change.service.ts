import { Inject, Injectable, Logger } from '@nestjs/common';
import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import type { Caller } from '@kc/auth';
import { conflict, unprocessable } from '@kc/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, updateEntry } from '@kc/fhir';
import { carePlanReferenceOf } from '@kc/followups';
import { openOrdersOfSessions } from '@kc/nest-core';
import { dosageToOrder, orderedBolusPerKg, orderedRatePerKg, orderRateText } from '@kc/protocols';
import {
  cancelledProposal,
  doseChangeReason,
  orderFromProposal,
  orderKeyFor,
  orderKeySearch,
  orderTaskIdOf,
  sessionBegunBy,
  type OpenOrder,
} from '@kc/task-states';
import { assertClearOf } from './contraindication-guard';
import { CurrentContraindications } from './current-contraindications';
import type { AskedRate, DecisionInput } from './task-decision.service';
import { changeDose } from './task-decisions';
import { decisionProvenance } from './provenance';
import { decide, DecisionWriter, type Consequence } from './task-review.service';
import { assertAuthorisable, readTaskUnderReview, type Proposal } from './task-under-review';
import { PatientRecordGuard } from '../protocols/patient-record-guard';

export interface DoseChangeInput extends DecisionInput {
  /** The rate per kg to order from now on. */
  rate: AskedRate;
  /** The bolus at the start; absent: none (the new order states the whole dose). */
  bolus?: AskedRate;
  reason?: string;
}

/** An administration that says the session has begun (the pump ran on this order). */

/**
 * Another dose for an approved infusion not given yet (`$change-dose`): the weight changed, the last session's
 * effects call for a lower rate. An order is what was signed, so it is replaced, not edited: the new order (signed by
 * this clinician, at the rate asked times the weight on record now, `priorPrescription` the old one) and the old one
 * cancelled, with the Task's If-Match and a Provenance, in one transaction. The patient's data is checked again as at
 * approval. A session the pump has started is the pump's to change; its rate starts the next proposal.
 */
@Injectable()
export class DoseChangeService {
  private readonly logger = new Logger(DoseChangeService.name);

  constructor(
    private readonly writer: DecisionWriter,
    private readonly fhir: FhirClient,
    private readonly contraindications: CurrentContraindications,
    private readonly patientRecord: PatientRecordGuard,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  async change(input: DoseChangeInput): Promise<Task> {
    const under = await readTaskUnderReview(this.writer, input.taskId);
    const { task, proposal, carePlan, issues } = under;
    const write = { current: task, seenVersion: input.seenVersion, caller: input.caller, decision: 'change-dose' };
    const asked = (t: Task) => this.ordersAsAsked(t, input);
    // Not the version this clinician saw: the writer tells their retry (answered as done) from a stale decision (412).
    if (task.meta?.versionId !== input.seenVersion) return this.writer.write({ ...write, change: (t) => t, asked });
    if (proposal?.resourceType !== 'MedicationRequest')
      throw unprocessable('This task orders no medication: it has no dose to change');
    const now = new Date();
    decide((t: Task) => changeDose(t, now), task);
    assertAuthorisable(under, input.caller);
    await this.patientRecord.assertRecordFound(under.task.for?.reference, under.patient);
    const links = await this.patientRecord.assertNotDeceased(under.patient);
    const checked = await this.contraindications.found(task, carePlan, issues, proposal, links);
    assertClearOf(carePlanReferenceOf(task), checked.found);
    const { order, beside } = await this.ordersToReplace(task);
    const dose = dosageToOrder({
      proposal,
      activity: checked.activity,
      asked: input.rate,
      bolus: input.bolus,
      variables: checked.variables,
      zone: this.config.clinicTimeZone,
    });
    if (dose.refusal) throw unprocessable(dose.refusal);
    const newDose = dose.dosage && orderRateText({ ...order, dosageInstruction: dose.dosage });
    if (!newDose) throw unprocessable('This order is not given at a rate per kg: change its dose in the EHR');
    if (newDose === orderRateText(order))
      throw unprocessable(`The order already gives ${newDose}: there is nothing to change`);
    const replacement = orderFromProposal({
      proposal,
      dosage: dose.dosage,
      supportingInformation: dose.weighed ? [dose.weighed] : undefined,
      carePlan: carePlanReferenceOf(task) ? { reference: carePlanReferenceOf(task) } : undefined,
      requester: { reference: input.caller.fhirUser, display: input.caller.display },
      now,
      key: orderKeyFor(task.id!),
      replaces: { reference: `MedicationRequest/${order.id}`, display: orderRateText(order) },
      notes: [
        `Dose changed before the session${input.reason ? `: ${input.reason}` : ''}`,
        ...(dose.weightNotice ? [dose.weightNotice] : []),
      ],
    });
    const changed = await this.writer.write({
      ...write,
      reason: input.reason,
      change: (t) => changeDose(t, now),
      asked,
      consequences: [
        () => replaced(order, newDose),
        ...beside.map((b) => () => replaced(b.order as Proposal, newDose)),
        (): Consequence => ({ resource: replacement, request: { method: 'POST', url: 'MedicationRequest' } }),
      ],
    });
    await this.replaceCrossedReplacements(changed, [order, ...beside.map((b) => b.order)], newDose, input.caller);
    return changed;
  }

  /**
   * The EHR's replacements of the orders this change replaced, written after the change read the session's orders and
   * before it landed (a dose changed in the EHR at the same moment, its cancel of the old order not written): replaced
   * by the new dose too, as those it read were, with the clinician's Provenance. Before session 56 they stayed active
   * beside the new order, two orders to give for one session (CI's clinic day, once). One read more per change. One the
   * pump has begun is the infusion's; one written after this read, or a write refused (the EHR closed it meanwhile) or
   * failed, is left: the to-do list then says the session has two orders to give.
   */
  private async replaceCrossedReplacements(
    task: Task,
    replacedHere: { resourceType: string; id?: string }[],
    newDose: string,
    caller: Caller,
  ): Promise<void> {
    const names = new Set(replacedHere.map((o) => `${o.resourceType}/${o.id}`));
    try {
      const beside = (await openOrdersOfSessions(this.fhir, [task])).get(task.id!)?.leftOpen ?? [];
      const crossed = beside.filter(
        (b) =>
          names.has((b.order as MedicationRequest).priorPrescription?.reference ?? '') &&
          !sessionBegunBy(b.administrations),
      );
      if (!crossed.length) return;
      const provenance = decisionProvenance({
        targets: crossed.map((b) => ({ reference: `${b.order.resourceType}/${b.order.id}` })),
        caller,
        decision: 'change-dose',
        now: new Date(),
        reason: `Replaced by the new dose (${newDose}): the EHR replaced the old order while the dose was being changed here`,
      });
      await this.fhir.transaction([
        ...crossed.map((b) => replaced(b.order as Proposal, newDose)),
        { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
      ]);
      this.logger.log({
        msg: 'EHR replacements that crossed a dose change replaced too',
        task: task.id,
        orders: crossed.length,
      });
    } catch (err) {
      this.logger.warn({
        msg: 'EHR replacements that crossed a dose change left open',
        task: task.id,
        error: String(err),
      });
    }
  }

  /**
   * The Task's order still to be given (openOrdersOfSessions), and the EHR's replacements of it left open beside it (its
   * cancel never went), replaced by the new order too: refused when there is none (given, stopped or cancelled), when
   * the EHR's own order replaced it (a dose changed there: changed there again), when it is held, or when the session
   * has begun under any of them.
   */
  private async ordersToReplace(task: Task): Promise<{ order: Proposal & MedicationRequest; beside: OpenOrder[] }> {
    const open = (await openOrdersOfSessions(this.fhir, [task])).get(task.id!);
    if (!open)
      throw conflict(
        "This task's order is no longer to be given (given, stopped or cancelled): there is no dose to change",
      );
    const { administrations, leftOpen: beside = [] } = open;
    const order = open.order as Proposal & MedicationRequest;
    if (!orderTaskIdOf(order))
      throw conflict(
        `The EHR replaced this task's order with its own (${order.resourceType}/${order.id}): change its dose in the EHR`,
      );
    if (order.status === 'on-hold')
      throw conflict(
        `Its order is on hold (${order.statusReason?.text ?? 'a contraindication'}): override it or reject the task first`,
      );
    const started = sessionBegunBy(administrations);
    if (started) {
      const when = started.effectivePeriod?.start ?? started.effectiveDateTime;
      throw conflict(
        `This session has begun${when ? ` (the pump recorded it at ${when})` : ''}: change its rate at the pump; the next session is proposed from the rate given`,
      );
    }
    const begun = sessionBegunBy(beside.flatMap((b) => b.administrations));
    if (begun)
      throw conflict(
        `This session has begun under the EHR's order (${begun.request?.reference ?? 'its replacement'}): change its rate at the pump`,
      );
    return { order, beside };
  }

  /** The same change sent again (its answer lost): the open order gives the rate and the bolus asked, and no other. */
  private async ordersAsAsked(task: Task, { rate, bolus }: DoseChangeInput): Promise<boolean> {
    const orders = await this.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(task.id!),
      status: 'active,on-hold',
    });
    return orders.some(
      (o) =>
        orderedRatePerKg(o, rate.unit) === rate.value &&
        (bolus ? orderedBolusPerKg(o, bolus.unit) === bolus.value : (o.dosageInstruction?.length ?? 0) <= 1),
    );
  }
}

/** The order replaced, cancelled (never given) with its If-Match, saying by what. */
function replaced(order: Proposal, newDose: string): Consequence {
  return updateEntry(cancelledProposal(order, doseChangeReason(newDose)), order.meta?.versionId);
}
