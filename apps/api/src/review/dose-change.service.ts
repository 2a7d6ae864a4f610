import { Inject, Injectable } from '@nestjs/common';
import type { MedicationRequest, Task } from '@medplum/fhirtypes';
import { conflict, unprocessable } from '@kc/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { carePlanReferenceOf } from '@kc/followups';
import { openOrdersOfSessions } from '@kc/nest-core';
import { dosageToOrder, orderedBolusPerKg, orderedRatePerKg, orderRateText } from '@kc/protocols';
import {
  doseChangeReason,
  orderFromProposal,
  orderKeyFor,
  orderKeySearch,
  orderTaskIdOf,
  sessionBegunBy,
  type OpenOrder,
} from '@kc/task-states';
import { assertClearOf } from './contraindication-guard';
import { CrossedEhrOrders } from './crossed-ehr-orders';
import { CurrentContraindications } from './current-contraindications';
import type { AskedRate, DecisionInput } from './task-decision.service';
import { changeDose } from './task-decisions';
import { cancelledEntry, decide, DecisionWriter, type Consequence } from './task-review.service';
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
  constructor(
    private readonly writer: DecisionWriter,
    private readonly fhir: FhirClient,
    private readonly contraindications: CurrentContraindications,
    private readonly patientRecord: PatientRecordGuard,
    private readonly crossed: CrossedEhrOrders,
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
        () => cancelledEntry(order, doseChangeReason(newDose)),
        ...beside.map((b) => () => cancelledEntry(b.order, doseChangeReason(newDose))),
        (): Consequence => ({ resource: replacement, request: { method: 'POST', url: 'MedicationRequest' } }),
      ],
    });
    // The EHR's replacements of the orders replaced, written while this change was being made.
    const replacedHere = new Set([order, ...beside.map((b) => b.order)].map((o) => `${o.resourceType}/${o.id}`));
    await this.crossed.closeAfter({
      task: changed,
      caller: input.caller,
      decision: 'change-dose',
      // Not the new order (the one the session is given under now), which names the old one too.
      crossed: ({ order: o }, main) =>
        !main && replacedHere.has((o as MedicationRequest).priorPrescription?.reference ?? ''),
      reason: doseChangeReason(newDose),
    });
    return changed;
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
