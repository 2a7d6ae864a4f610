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

/**
 * Puts a Task the FHIR server says changed (a Subscription notification, or the poll) on the maintenance queue, so a
 * check an EHR completed itself is recorded as done here (the job reads the Task and decides; ids only); and answers
 * written without the Task (a QuestionnaireResponse), so the check they answer is.
 */
@Injectable()
export class CompletedTaskEventsProducer {
  constructor(
    @InjectQueue(QUEUES.maintenance)
    private readonly queue: Queue<
      | CheckDoneElsewhereJob
      | CheckAnsweredElsewhereJob
      | AppointmentBookedJob
      | SessionApprovedJob
      | OrderChangedJob
      | AdministrationRecordedJob
      | TaskDeletedJob
      | TaskChangedInEhrJob
    >,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async enqueue(taskId: string): Promise<{ jobId: string }> {
    const jobId = checkDoneElsewhereJobId(taskId);
    const queued = await withinEnqueueTimeout(
      addKeyed(
        this.queue,
        JOBS.checkDoneElsewhere,
        { taskId },
        { jobId, ...retryOptions(this.config), removeOnComplete: true, removeOnFail: false },
      ),
    );
    return { jobId: queued };
  }

  /** A QuestionnaireResponse written: the job reads it and the patient's checks, and decides. */
  async enqueueAnswers(responseId: string): Promise<{ jobId: string }> {
    const jobId = checkAnsweredElsewhereJobId(responseId);
    const queued = await withinEnqueueTimeout(
      addKeyed(
        this.queue,
        JOBS.checkAnsweredElsewhere,
        { responseId },
        // A form filler that completes the Task itself is left to (CHECK_ANSWERS_GRACE_MS).
        {
          jobId,
          delay: this.config.checkAnswersGraceMs,
          ...retryOptions(this.config),
          removeOnComplete: true,
          removeOnFail: false,
        },
      ),
    );
    return { jobId: queued };
  }

  /** An infusion session approved: the job looks for an appointment booked for it while it awaited approval. */
  async enqueueApprovedSession(taskId: string): Promise<{ jobId: string }> {
    const jobId = sessionApprovedJobId(taskId);
    const queued = await withinEnqueueTimeout(
      addKeyed(
        this.queue,
        JOBS.sessionApproved,
        { taskId },
        { jobId, ...retryOptions(this.config), removeOnComplete: true, removeOnFail: false },
      ),
    );
    return { jobId: queued };
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
  async enqueueOrderChange(orderId: string): Promise<{ jobId: string }> {
    const jobId = orderChangedJobId(orderId);
    const queued = await withinEnqueueTimeout(
      addKeyed(
        this.queue,
        JOBS.orderChanged,
        { orderId },
        {
          jobId,
          delay: this.config.orderChangeGraceMs,
          ...retryOptions(this.config),
          removeOnComplete: true,
          removeOnFail: false,
        },
      ),
    );
    return { jobId: queued };
  }

  /**
   * A MedicationAdministration recorded: the job proposes the sessions awaiting approval after its infusion again at
   * the rate it records (an eMAR that documents after the Procedure).
   */
  async enqueueAdministration(administrationId: string): Promise<{ jobId: string }> {
    const jobId = administrationRecordedJobId(administrationId);
    const queued = await withinEnqueueTimeout(
      addKeyed(
        this.queue,
        JOBS.administrationRecorded,
        { administrationId },
        { jobId, ...retryOptions(this.config), removeOnComplete: true, removeOnFail: false },
      ),
    );
    return { jobId: queued };
  }

  /** An Appointment written in the scheduling system: the job reads it and the patient's approved sessions. */
  async enqueueAppointment(appointmentId: string): Promise<{ jobId: string }> {
    const jobId = appointmentBookedJobId(appointmentId);
    const queued = await withinEnqueueTimeout(
      addKeyed(
        this.queue,
        JOBS.appointmentBooked,
        { appointmentId },
        { jobId, ...retryOptions(this.config), removeOnComplete: true, removeOnFail: false },
      ),
    );
    return { jobId: queued };
  }

  /** A Task deleted on the FHIR server: the job reads its last version and withdraws what it authorised. */
  async enqueueDeletedTask(taskId: string): Promise<{ jobId: string }> {
    const jobId = taskDeletedJobId(taskId);
    const queued = await withinEnqueueTimeout(
      addKeyed(
        this.queue,
        JOBS.taskDeleted,
        { taskId },
        { jobId, ...retryOptions(this.config), removeOnComplete: true, removeOnFail: false },
      ),
    );
    return { jobId: queued };
  }

  /** A Task an EHR changed by its status (a session closed, a Task set to be done unapproved): the job reads it. */
  async enqueueTaskChangedInEhr(taskId: string, versionId?: string): Promise<{ jobId: string }> {
    const jobId = taskChangedInEhrJobId(taskId, versionId);
    const queued = await withinEnqueueTimeout(
      addKeyed(
        this.queue,
        JOBS.taskChangedInEhr,
        { taskId },
        { jobId, ...retryOptions(this.config), removeOnComplete: true, removeOnFail: false },
      ),
    );
    return { jobId: queued };
  }
}
