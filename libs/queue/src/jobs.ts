import type { AppConfig } from '@kc/config';
/** Job names and payloads. Payloads carry ids only: never patient data, which stays on the FHIR server. */
export const JOBS = {
  infusionCompleted: 'infusion-completed',
  pollProcedures: 'poll-procedures',
  overdueSweep: 'overdue-sweep',
  reconcileProcedures: 'reconcile-procedures',
  scoreRecorded: 'score-recorded',
  deliverReminder: 'deliver-reminder',
  sweepReminders: 'sweep-reminders',
  withdrawStoppedPlan: 'withdraw-stopped-plan',
  recheckContraindications: 'recheck-contraindications',
  checkDoneElsewhere: 'check-done-elsewhere',
  checkAnsweredElsewhere: 'check-answered-elsewhere',
  appointmentBooked: 'appointment-booked',
  sessionApproved: 'session-approved',
  orderChanged: 'order-changed',
  administrationRecorded: 'administration-recorded',
  taskDeleted: 'task-deleted',
  taskChangedInEhr: 'task-changed-in-ehr',
  reviveDeadLetters: 'revive-dead-letters',
  writeBulkExport: 'write-bulk-export',
  deleteBulkExport: 'delete-bulk-export',
} as const;

/**
 * A Task deleted on the FHIR server (notified, or an open order found naming a Task that is gone): what it authorised
 * and had not happened yet (its order, its proposal, its reminders) is withdrawn.
 */
export interface TaskDeletedJob {
  taskId: string;
}

/** While a deleted Task's job is pending, the same deletion notified again is queued once. */
export function taskDeletedJobId(taskId: string): string {
  return `${JOBS.taskDeleted}-${jobIdPart(taskId)}`;
}

/**
 * A Task an EHR changed by its status alone (notified, or found by the poll): an infusion session it closed (its orders
 * still to give closed as that status says, its reminders revoked), or one it set to be done while it awaited approval
 * here (returned for approval).
 */
export interface TaskChangedInEhrJob {
  taskId: string;
}

/**
 * One job per version of the Task (when known): the same version notified again is queued once, while a newer one is
 * queued even as the job of the one before is running (BullMQ drops an add whose id a running job holds: an EHR setting
 * a Task ready again just as its job returned it would go unheard; the clinic day in CI).
 */
export function taskChangedInEhrJobId(taskId: string, versionId?: string): string {
  return `${JOBS.taskChangedInEhr}-${jobIdPart(taskId)}${versionId ? `-${jobIdPart(versionId)}` : ''}`;
}

/**
 * A MedicationAdministration recorded (notified, or found by the poll): the sessions awaiting approval proposed after
 * its infusion are proposed again at the rate it records, when their follow-ups were written before it.
 */
export interface AdministrationRecordedJob {
  administrationId: string;
}

/** While an administration's job is pending, the same one notified again is queued once. */
export function administrationRecordedJobId(administrationId: string): string {
  return `${JOBS.administrationRecorded}-${jobIdPart(administrationId)}`;
}

/**
 * An order this service wrote changed on the FHIR server (notified, or found by the poll): closed in the EHR with
 * nothing in its place, its approved session is returned to a clinician.
 */
export interface OrderChangedJob {
  orderId: string;
}

/** While an order's job is pending, the same order notified again is queued once (the job reads it as it is then). */
export function orderChangedJobId(orderId: string): string {
  return `${JOBS.orderChanged}-${jobIdPart(orderId)}`;
}

/** A Task changed on the FHIR server (notified, or found by the poll): a check an EHR completed is recorded as done. */
export interface CheckDoneElsewhereJob {
  taskId: string;
}

/** While a Task's job is pending, the same Task notified again is queued once (the job reads the Task as it is then). */
export function checkDoneElsewhereJobId(taskId: string): string {
  return `${JOBS.checkDoneElsewhere}-${jobIdPart(taskId)}`;
}

/**
 * A QuestionnaireResponse written on the FHIR server (notified, or found by the poll): answers a portal or an EHR
 * wrote without touching the Task are matched to the patient's open check, which is recorded as done.
 */
export interface CheckAnsweredElsewhereJob {
  responseId: string;
}

/** While a response's job is pending, the same response notified again is queued once. */
export function checkAnsweredElsewhereJobId(responseId: string): string {
  return `${JOBS.checkAnsweredElsewhere}-${jobIdPart(responseId)}`;
}

/**
 * An Appointment written in the clinic's scheduling system (notified, or found by the poll): the approved session it
 * books gets its time as its due window, and its reminders with it.
 */
export interface AppointmentBookedJob {
  appointmentId: string;
}

/** While an appointment's job is pending, the same appointment notified again is queued once. */
export function appointmentBookedJobId(appointmentId: string): string {
  return `${JOBS.appointmentBooked}-${jobIdPart(appointmentId)}`;
}

/**
 * An infusion session approved: an appointment the scheduling system booked for it before (while it awaited approval)
 * books it now.
 */
export interface SessionApprovedJob {
  taskId: string;
}

/** While a session's job is pending, the same approval sent again is queued once. */
export function sessionApprovedJobId(taskId: string): string {
  return `${JOBS.sessionApproved}-${jobIdPart(taskId)}`;
}

/** A CarePlan changed (a Subscription said so): its Tasks awaiting approval are withdrawn if it was stopped. */
export interface WithdrawStoppedPlanJob {
  carePlanId: string;
}

/** While a plan's job is pending, the same plan notified again is queued once (the job reads the plan as it is then). */
export function withdrawStoppedPlanJobId(carePlanId: string): string {
  return `${JOBS.withdrawStoppedPlan}-${jobIdPart(carePlanId)}`;
}

/**
 * A Condition or an Observation of a patient changed: their plans' contraindications are checked again now; or a
 * contraindication was resolved outside this service: the holds it placed are lifted now.
 */
export interface RecheckContraindicationsJob {
  /**
   * `Condition/<id>` or `Observation/<id>`: the worker reads it for its patient; `CarePlan/<id>`: that plan;
   * `DetectedIssue/<id>`: the worker reads it (its last version, deleted) for the plans it implicates;
   * `PlanDefinition/<id>`: the plans following it (ids only, never patient data).
   */
  reference: string;
}

/** While a record's job is pending, the same record notified again is queued once. */
export function recheckContraindicationsJobId(reference: string): string {
  return `${JOBS.recheckContraindications}-${jobIdPart(reference.replace('/', '-'))}`;
}

export interface ScoreRecordedJob {
  observationId: string;
  source: EventSource;
}

/** While a score's job is pending, the same Observation arriving again is queued once. */
export function scoreJobId(observationId: string): string {
  return `${JOBS.scoreRecorded}-${jobIdPart(observationId)}`;
}

/** The reconciliation's look at one version of a score (ScoreEventsProducer.enqueueForReconciliation). */
export function reconciledScoreJobId(observationId: string, versionId: string): string {
  return `${scoreJobId(observationId)}-v${jobIdPart(versionId)}`;
}

export interface DeliverReminderJob {
  communicationRequestId: string;
  /** The time the reminder had when it was queued; a moved reminder's old job sees the difference and stands down. */
  sendAt: string;
}

/** One job per reminder and time: queuing it again (sweep, retry) is a no-op; a moved reminder gets a new job. */
export function reminderJobId(communicationRequestId: string, sendAt: string): string {
  return `${JOBS.deliverReminder}-${jobIdPart(communicationRequestId)}-${Date.parse(sendAt)}`;
}

/** Where an event came from; `pump-record`: an infusion followed up again for a pump record charted after it. */
export type EventSource = 'webhook' | 'poll' | 'api' | 'pump-record';

/** How every event job retries (JOB_ATTEMPTS, exponential from JOB_BACKOFF_MS) before it is kept as failed. */
export function retryOptions(config: Pick<AppConfig, 'jobAttempts' | 'jobBackoffMs'>): {
  attempts: number;
  backoff: { type: 'exponential'; delay: number };
} {
  return { attempts: config.jobAttempts, backoff: { type: 'exponential', delay: config.jobBackoffMs } };
}

export interface InfusionCompletedJob {
  procedureId: string;
  source: EventSource;
}

/**
 * One job id per infusion: BullMQ ignores an add whose id already exists, so the same infusion arriving by
 * webhook, poll and API at once is queued once. (BullMQ forbids ':' in custom ids.)
 */
export function infusionJobId(procedureId: string): string {
  return `${JOBS.infusionCompleted}-${jobIdPart(procedureId)}`;
}

/**
 * A follow-up job that did nothing (its Procedure was not yet completed, did not exist, or is not a follow-up case):
 * its id must not hold back a later, valid event for the same Procedure.
 */
export function didNothing(returnvalue: unknown): boolean {
  return (returnvalue as { status?: unknown } | null | undefined)?.status === 'ignored';
}

/** The payload fields that name what a job is about (ids only), and the resource type each names. */
const ABOUT: Record<string, string> = {
  procedureId: 'Procedure',
  observationId: 'Observation',
  communicationRequestId: 'CommunicationRequest',
  carePlanId: 'CarePlan',
  taskId: 'Task',
  responseId: 'QuestionnaireResponse',
  appointmentId: 'Appointment',
  orderId: 'MedicationRequest',
  administrationId: 'MedicationAdministration',
};

/** The resource a job is about (`Task/123`), read from its payload; none for a sweep or a poll. */
export function jobAbout(data: unknown): string | undefined {
  if (!data || typeof data !== 'object') return undefined;
  const fields = data as Record<string, unknown>;
  if (typeof fields.reference === 'string') return fields.reference;
  for (const [field, type] of Object.entries(ABOUT))
    if (typeof fields[field] === 'string') return `${type}/${fields[field]}`;
  return undefined;
}

/** A resource id as part of a job id (BullMQ forbids ':' in custom ids). */
function jobIdPart(id: string): string {
  return id.replace(/[^A-Za-z0-9\-.]/g, '_');
}
