import type { Task } from '@medplum/fhirtypes';
import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { withinEnqueueTimeout } from './infusion-events.producer';
import {
  administrationRecordedJobId,
  appointmentBookedJobId,
  orderChangedJobId,
  sessionApprovedJobId,
  taskDeletedJobId,
  taskChangedInEhrJobId,
  checkAnsweredElsewhereJobId,
  checkDoneElsewhereJobId,
  JOBS,
  retryOptions,
  type AppointmentBookedJob,
  type SessionApprovedJob,
  type CheckAnsweredElsewhereJob,
  type CheckDoneElsewhereJob,
  type OrderChangedJob,
  type AdministrationRecordedJob,
  type TaskDeletedJob,
  type TaskChangedInEhrJob,
} from './jobs';
import { addKeyed } from './keyed-jobs';
import { QUEUES } from './queue-names';

/** The jobs this producer puts on the maintenance queue. */
type MaintenanceJob =
  | CheckDoneElsewhereJob
  | CheckAnsweredElsewhereJob
  | AppointmentBookedJob
  | SessionApprovedJob
  | OrderChangedJob
  | AdministrationRecordedJob
  | TaskDeletedJob
  | TaskChangedInEhrJob;

/**
 * Puts a Task the FHIR server says changed (a Subscription notification, or the poll) on the maintenance queue, so a
 * check an EHR completed itself is recorded as done here (the job reads the Task and decides; ids only); and answers
 * written without the Task (a QuestionnaireResponse), so the check they answer is.
 */
@Injectable()
export class CompletedTaskEventsProducer {
  constructor(
    @InjectQueue(QUEUES.maintenance)
    private readonly queue: Queue<MaintenanceJob>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  enqueue(taskId: string): Promise<{ jobId: string }> {
    return this.add(JOBS.checkDoneElsewhere, { taskId }, checkDoneElsewhereJobId(taskId));
  }

  /** A QuestionnaireResponse written: the job reads it and the patient's checks, and decides. */
  enqueueAnswers(responseId: string): Promise<{ jobId: string }> {
    // A form filler that completes the Task itself is left to (CHECK_ANSWERS_GRACE_MS).
    return this.add(JOBS.checkAnsweredElsewhere, { responseId }, checkAnsweredElsewhereJobId(responseId), {
      delay: this.config.checkAnswersGraceMs,
    });
  }

  /** An infusion session approved: the job looks for an appointment booked for it while it awaited approval. */
  enqueueApprovedSession(taskId: string): Promise<{ jobId: string }> {
    return this.add(JOBS.sessionApproved, { taskId }, sessionApprovedJobId(taskId));
  }

  /**
   * Infusion sessions (Tasks ordering a MedicationRequest) approved, or released from a contraindication's hold: for
   * each, a job books it from an appointment in its protocol window, which the scheduling system may have booked while
   * it awaited approval or was held (neither is booked then). Other Tasks are skipped; returns how many were queued.
   */
  async enqueueBookableSessions(tasks: Task[]): Promise<number> {
    const sessions = tasks.filter((t) => t.id && t.focus?.reference?.startsWith('MedicationRequest/'));
    for (const session of sessions) await this.enqueueApprovedSession(session.id!);
    return sessions.length;
  }

  /**
   * An order this service wrote changed outside it (closed in the EHR, say): the job reads it, and returns its approved
   * session to a clinician when nothing replaced it. Queued ORDER_CHANGE_GRACE_MS later: an EHR changing a dose may
   * cancel the order before it writes the replacement.
   */
  enqueueOrderChange(orderId: string): Promise<{ jobId: string }> {
    return this.add(JOBS.orderChanged, { orderId }, orderChangedJobId(orderId), {
      delay: this.config.orderChangeGraceMs,
    });
  }

  /**
   * A MedicationAdministration recorded: the job proposes the sessions awaiting approval after its infusion again at
   * the rate it records (an eMAR that documents after the Procedure).
   */
  enqueueAdministration(administrationId: string): Promise<{ jobId: string }> {
    return this.add(JOBS.administrationRecorded, { administrationId }, administrationRecordedJobId(administrationId));
  }

  /** An Appointment written in the scheduling system: the job reads it and the patient's approved sessions. */
  enqueueAppointment(appointmentId: string): Promise<{ jobId: string }> {
    return this.add(JOBS.appointmentBooked, { appointmentId }, appointmentBookedJobId(appointmentId));
  }

  /** A Task deleted on the FHIR server: the job reads its last version and withdraws what it authorised. */
  enqueueDeletedTask(taskId: string): Promise<{ jobId: string }> {
    return this.add(JOBS.taskDeleted, { taskId }, taskDeletedJobId(taskId));
  }

  /** A Task an EHR changed by its status (a session closed, a Task set to be done unapproved): the job reads it. */
  enqueueTaskChangedInEhr(taskId: string, versionId?: string): Promise<{ jobId: string }> {
    return this.add(JOBS.taskChangedInEhr, { taskId }, taskChangedInEhrJobId(taskId, versionId));
  }

  /** One job keyed by what it is about (addKeyed: one failed for good is queued again), kept on the dead letters. */
  private async add(
    name: string,
    data: MaintenanceJob,
    jobId: string,
    extra: { delay?: number } = {},
  ): Promise<{ jobId: string }> {
    const queued = await withinEnqueueTimeout(
      addKeyed(this.queue, name, data, {
        jobId,
        ...extra,
        ...retryOptions(this.config),
        removeOnComplete: true,
        removeOnFail: false,
      }),
    );
    return { jobId: queued };
  }
}
