import { Injectable } from '@nestjs/common';
import { ProtocolChangeBroadcast } from '@kc/nest-core';
import {
  CompletedTaskEventsProducer,
  InfusionEventsProducer,
  PatientRecordEventsProducer,
  ScoreEventsProducer,
  StoppedPlanEventsProducer,
} from '@kc/queue';
import {
  administrationIdsIn,
  appointmentIdsIn,
  carePlanIdsIn,
  clearedIssueIdsIn,
  closedOrderIdsIn,
  conditionIdsIn,
  deceasedPatientIdsIn,
  observationIdsIn,
  planDefinitionIdsIn,
  procedureIdsIn,
  procedureRecordIdsIn,
  responseIdsIn,
} from './notified-resources';

/** One kind of resource a notification may carry that gets a worker's job (Tasks go to the lists: the controller's). */
export interface NotifiedKind {
  resourceType: string;
  /** How the webhook's answer counts them ("closed order(s)"). */
  counted: string;
  /** Of a notification's body, the ids that call for a job (ids only: the worker re-reads each). */
  idsIn(body: unknown): string[];
  /** The job(s) for one, by id: a HAPI-style PUT names one, with or without its body, and is always queued. */
  enqueue(id: string): Promise<unknown>;
  /**
   * Whether one deleted on the server gets the same job (by id: the worker finds it gone and reads its last version
   * from its history); otherwise a deletion is nothing to do.
   */
  whenDeleted: boolean;
}

/**
 * What the webhook queues for each kind of resource it is told of (FhirWebhookController), in one table: the POST's
 * bodies and the PUT's resource types are both read from it, so a kind subscribed to is acted on either way.
 */
@Injectable()
export class NotifiedJobs {
  readonly kinds: readonly NotifiedKind[];

  constructor(
    infusions: InfusionEventsProducer,
    scores: ScoreEventsProducer,
    plans: StoppedPlanEventsProducer,
    records: PatientRecordEventsProducer,
    completedTasks: CompletedTaskEventsProducer,
    protocols: ProtocolChangeBroadcast,
  ) {
    const kind = (
      resourceType: string,
      counted: string,
      idsIn: (body: unknown) => string[],
      enqueue: (id: string) => Promise<unknown>,
      whenDeleted = false,
    ): NotifiedKind => ({ resourceType, counted, idsIn, enqueue, whenDeleted });
    // A protocol changed or deleted: read again by every process from now on, and its plans checked by the worker.
    const protocolChanged = async (id: string) => {
      await protocols.changed();
      return records.enqueue(`PlanDefinition/${id}`);
    };
    this.kinds = [
      kind('Procedure', 'infusion event(s)', procedureIdsIn, (id) => infusions.enqueue(id, 'webhook')),
      // An infusion recorded in error, or deleted, after its follow-ups: its plan held until a clinician puts it right;
      // re-timed after them: their windows counted again from its time now (a job of its own: the infusion's job id is
      // kept a week after it ran, so queueing that again does nothing).
      kind('Procedure', 'infusion record(s)', procedureRecordIdsIn, (id) => records.enqueue(`Procedure/${id}`), true),
      // A score (the booster timing), or a blood pressure or pregnancy status (the contraindication checks).
      kind('Observation', 'Observation(s)', observationIdsIn, async (id) => {
        await scores.enqueue(id, 'webhook');
        await records.enqueue(`Observation/${id}`);
      }),
      // A Condition may contraindicate what is approved or awaits approval.
      kind('Condition', 'Condition(s)', conditionIdsIn, (id) => records.enqueue(`Condition/${id}`)),
      // A plan stopped, paused or resumed in the EHR.
      // Deleted, as revoked: its open Tasks are withdrawn.
      kind('CarePlan', 'CarePlan(s)', carePlanIdsIn, (id) => plans.enqueue(id), true),
      // Answers a portal wrote without the Task: the worker matches them to the patient's open check.
      kind('QuestionnaireResponse', 'QuestionnaireResponse(s)', responseIdsIn, (id) =>
        completedTasks.enqueueAnswers(id),
      ),
      // Appointments the clinic's scheduling system booked: the worker times the approved sessions from them.
      // Deleted, as cancelled: the session booked at it is at no time now.
      kind('Appointment', 'Appointment(s)', appointmentIdsIn, (id) => completedTasks.enqueueAppointment(id), true),
      // An approved session's order closed in the EHR: the worker returns the session to a clinician if nothing
      // replaced it (the job reads the order and the Tasks naming it; an open order, or one of no session, changes
      // nothing).
      // Deleted, as cancelled in the EHR (Medplum and the embedded store are asked for orders' deletions alone; HAPI,
      // which cannot be, for every order's change).
      kind(
        'MedicationRequest',
        'closed order(s)',
        closedOrderIdsIn,
        (id) => completedTasks.enqueueOrderChange(id),
        true,
      ),
      // A rate recorded at the pump after the follow-ups: the sessions proposed since are proposed again at it.
      kind('MedicationAdministration', 'MedicationAdministration(s)', administrationIdsIn, (id) =>
        completedTasks.enqueueAdministration(id),
      ),
      // A contraindication resolved in the EHR (overridden there, or withdrawn): what it held is released now.
      // Deleted, the plans it implicated are checked again: released where nothing contraindicates them any more.
      kind(
        'DetectedIssue',
        'resolved DetectedIssue(s)',
        clearedIssueIdsIn,
        (id) => records.enqueue(`DetectedIssue/${id}`),
        true,
      ),
      kind('PlanDefinition', 'PlanDefinition(s)', planDefinitionIdsIn, protocolChanged, true),
      // A patient recorded as deceased: the plans this service follows for them ended, what they hold withdrawn.
      kind('Patient', 'deceased patient(s)', deceasedPatientIdsIn, (id) => records.enqueue(`Patient/${id}`)),
    ];
  }

  /** The kinds of a resource type that get a job (a Procedure has two: completed, and recorded in error). */
  of(resourceType: string): NotifiedKind[] {
    return this.kinds.filter((k) => k.resourceType === resourceType);
  }
}
