import { Injectable, Logger } from '@nestjs/common';
import type {
  ActivityDefinition,
  CarePlan,
  DetectedIssue,
  MedicationRequest,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import {
  ContraindicationRecorder,
  OrderHolds,
  PatientDataLoader,
  PlanDefinitions,
  type PersonRecords,
} from '@kc/nest-core';
import { unprocessable } from '@kc/common';
import {
  activityDefinitionIn,
  hasContraindicationChecks,
  protocolActionOf,
  rateTitrationOf,
  type ProtocolVariables,
} from '@kc/protocols';
import { PatientRecordEventsProducer } from '@kc/queue';
import { patientIdOf } from '@kc/task-states';
import { implicating } from './contraindication-guard';

/** What an approval learns from the patient's data as it is now. */
export interface CheckedNow {
  /** Contraindications found now and recorded: the approval guard refuses on them. */
  found: DetectedIssue[];
  /** The ActivityDefinition the Task's request instantiates, when the plan's definitions are known. */
  activity?: ActivityDefinition;
  /** The patient's data (%bodyWeight...), when it was read: a titrated infusion's dose is ordered from it. */
  variables?: ProtocolVariables;
  /** The patient's open medication orders, read with that data for a medication's approval. */
  openOrders?: MedicationRequest[];
  /** The Tasks approved on one of those (the EHR's orders that are a session's). */
  openOrderSessions?: Task[];
}

/**
 * The contraindication checks, asked again when a clinician authorises care: the Task was proposed when the patient
 * was eligible, and a pregnancy or a blood pressure recorded since (before any infusion event made the follow-up
 * worker look) must stop the order. One more FHIR request (the patient's data, in one batch), only for a Task whose
 * protocol action a contraindication check gates or whose request is an infusion titrated per kg (the same read
 * gives the body weight its dose is ordered from).
 */
@Injectable()
export class CurrentContraindications {
  private readonly logger = new Logger(CurrentContraindications.name);

  constructor(
    private readonly plans: PlanDefinitions,
    private readonly loader: PatientDataLoader,
    private readonly recorder: ContraindicationRecorder,
    private readonly holds: OrderHolds,
    private readonly records: PatientRecordEventsProducer,
  ) {}

  /**
   * The contraindications found now that gate the Task, that no clinician overrode and that are not on record for
   * the plan yet, each recorded as the plan's DetectedIssue (the one $apply and the follow-ups write for that code):
   * what the approval guard then refuses on, and what the clinician can override. Those already on record were
   * judged by the guard before this. A new one also holds the orders approved under the plan before (OrderHolds),
   * as the worker's sweep would. `links`: the patient's linked records as the guard read them (not read again).
   */
  async found(
    task: Task,
    carePlan: CarePlan | undefined,
    issues: DetectedIssue[],
    proposal?: Resource,
    links?: PersonRecords,
  ): Promise<CheckedNow> {
    const actionId = protocolActionOf(task);
    const patientId = patientIdOf(task);
    const canonical = carePlan?.instantiatesCanonical?.[0];
    if (!carePlan || !actionId || !patientId || !canonical) return { found: [] };
    const known = await this.plans.ofCarePlan(carePlan);
    // Its checks cannot be run again: nothing is authorised on a patient's data read against no rules.
    if (!known) throw protocolNotFound(`CarePlan/${carePlan.id}`, canonical);
    const { plan, definitions } = known;
    const activity = activityDefinitionIn(definitions, instantiatedBy(proposal));
    const checked = hasContraindicationChecks(plan, actionId, definitions);
    if (!checked && !rateTitrationOf(activity)) return { found: [], activity };
    // A medication's approval also reads the patient's open orders in the same batch: ordered already, not twice.
    const loaded = await this.loader.load(plan, patientId, {
      openOrders: proposal?.resourceType === 'MedicationRequest',
      links,
    });
    const variables = loaded.patient ? { ...loaded.data, patient: loaded.patient, subject: loaded.patient } : undefined;
    const { openOrders, openOrderSessions } = loaded;
    if (!checked) return { found: [], activity, variables, openOrders, openOrderSessions };
    const recorded = await this.recorder.recordOn(
      {
        plan,
        resolver: definitions,
        carePlan,
        patientId,
        actionIds: [actionId],
        issues: implicating(issues, `CarePlan/${carePlan.id}`),
        foundWhen: `when a clinician was to approve “${task.description ?? task.code?.coding?.[0]?.display ?? 'a task'}”`,
      },
      loaded,
    );
    for (const { issue, created } of recorded)
      if (created) this.logger.warn({ msg: 'contraindication found at approval', task: task.id, issue: issue.id });
    let found = recorded.map((r) => r.issue);
    if (recorded.length) {
      const hold = await this.holds.hold({
        carePlanId: carePlan.id!,
        protocol: { plan, resolver: definitions },
        issues: [...issues, ...found],
      });
      if (hold.held) await this.tellClinicOfHold(`CarePlan/${carePlan.id}`);
      // As the hold wrote them (naming the orders held): the refusal says what is held.
      found = found.map((issue) => hold.issues.find((h) => h.id === issue.id) ?? issue);
    }
    return { found, activity, variables, openOrders, openOrderSessions };
  }

  /**
   * Orders approved before were just held: the plan's hold job (the worker) emails the clinic, as it does for holds it
   * makes itself. The approving clinician is refused either way; a queue that is down leaves the email to the sweep.
   */
  private async tellClinicOfHold(carePlan: string): Promise<void> {
    try {
      await this.records.holdOrdersOf(carePlan);
    } catch (err) {
      this.logger.warn({ msg: 'hold job not queued; the sweep tells the clinic', carePlan, error: String(err) });
    }
  }
}

/**
 * 422: the plan's protocol is nowhere to be read (a PlanDefinition deleted from the FHIR server, say). In words for the
 * clinician; the canonical for the integrator (diagnostics).
 */
function protocolNotFound(carePlan: string, canonical: string): Error {
  return unprocessable(
    'This care plan’s protocol is not found any more (neither one of this service’s nor on the FHIR server), so the patient cannot be checked again for its contraindications before this decision. Have the protocol posted again, or reject the task.',
    ['CarePlan.instantiatesCanonical'],
    `${carePlan} instantiates ${canonical}: neither in fhir-profiles/ nor on the FHIR server; post that PlanDefinition again`,
  );
}

/** The canonical a proposed request instantiates (its ActivityDefinition), when it names one. */
function instantiatedBy(request: Resource | undefined): string | undefined {
  return (request as { instantiatesCanonical?: string[] } | undefined)?.instantiatesCanonical?.[0];
}
