import { DynamicModule, Module } from '@nestjs/common';
import type { AppConfig } from '@kc/config';
import { configuredProcessor, QUEUES, workerOptionsFrom } from '@kc/queue';
import { FollowUpMetrics } from './followups/follow-up.metrics';
import { ClinicAlertMetrics } from './alerts/clinic-alert.metrics';
import { ChecksAnsweredElsewhere } from './checks/checks-answered-elsewhere.service';
import { AppointmentBookings } from './bookings/appointment-bookings.service';
import { AppointmentPoller } from './bookings/appointment-poller';
import { FollowUpProcessor } from './followups/follow-up.processor';
import { FollowUpService } from './followups/follow-up.service';
import { MaintenanceProcessor } from './maintenance/maintenance.processor';
import { ClearedIssuesPoller } from './maintenance/cleared-issues-poller';
import { PlanChanges } from './maintenance/plan-changes';
import { ProtocolChanges } from './maintenance/protocol-changes';
import { InfusionsInError } from './maintenance/infusions-in-error';
import { RetimedInfusions } from './followups/retimed-infusions';
import { DeceasedPatients } from './maintenance/deceased-patients';
import { DeathsTakenBack } from './maintenance/deaths-taken-back';
import { PlansAtTheirEnd } from './maintenance/plans-at-their-end';
import { PlansExtended } from './maintenance/plans-extended';
import { UnlinkedInfusionIssues } from './maintenance/unlinked-infusion-issues';
import { DeletedTasks } from './maintenance/deleted-tasks';
import { TasksClosedInEhr } from './maintenance/tasks-closed-in-ehr';
import { TasksChangedInEhr } from './maintenance/tasks-changed-in-ehr';
import { WindowsMovedInEhr } from './maintenance/windows-moved-in-ehr';
import { TasksChangedInEhrPoller } from './maintenance/tasks-changed-in-ehr-poller';
import { DeceasedPatientsPoller } from './maintenance/deceased-patients-poller';
import { MaintenanceSchedules } from './maintenance/maintenance-schedules';
import { AnsweredOrdersSweep } from './maintenance/answered-orders-sweep';
import { ClosingsCrossedByTheEhr } from './maintenance/closings-crossed-by-the-ehr';
import { DoseChangesCrossedByTheEhr } from './maintenance/dose-changes-crossed-by-the-ehr';
import { ClosedOrderReviews } from './maintenance/closed-order-reviews';
import { ClosedOrdersPoller } from './maintenance/closed-orders-poller';
import { AdministrationsPoller } from './followups/administrations-poller';
import { LateAdministrations } from './followups/late-administrations.service';
import { CrossedClosings } from './followups/crossed-closings.service';
import { AdministrationRecorded } from './followups/administration-recorded';
import { OrderChanged } from './maintenance/order-changed';
import { ContraindicationSweep } from './maintenance/contraindication-sweep';
import { ProtocolNotFoundIssues } from './maintenance/protocol-not-found-issues';
import { OverdueSweep } from './maintenance/overdue-sweep';
import { StoppedPlanSweep } from './maintenance/stopped-plan-sweep';
import { PausedPlanHolds } from './maintenance/paused-plan-holds';
import { OpenTasksReader } from './maintenance/open-tasks';
import { ProcedurePoller } from './maintenance/procedure-poller';
import { QueueJobMetrics } from './queue-job-metrics';
import { BoosterOutcomes } from './outcomes/booster-outcomes.service';
import { BoosterOutcomesProcessor } from './outcomes/booster-outcomes.processor';
import { ScorePoller } from './outcomes/score-poller';
import { EmailReminderSender } from './reminders/email-reminder-sender';
import { FhirCommunicationRecord } from './reminders/fhir-communication-record';
import { ReminderSendMarks } from './reminders/reminder-send-marks';
import { ReminderDelivery } from './reminders/reminder-delivery.service';
import { ReminderProcessor } from './reminders/reminder.processor';
import { REMINDER_SENDERS } from './reminders/reminder-sender';
import { CLINIC_ALERT_SENDER, EmailClinicAlertSender } from './alerts/clinic-alert-sender';
import { AlertDelivery } from './alerts/alert-delivery';
import { ClinicAlerts } from './alerts/clinic-alerts.service';
import { InfusionsUnderClosedPlans } from './alerts/infusions-under-closed-plans';
import { FailingWorkAlerts } from './alerts/failing-work-alerts';
import { RateNoticeAlerts } from './alerts/rate-notice-alerts';
import { AlertSendClaims } from './alerts/alert-send-claims';
import { AlertsOwed } from './alerts/alerts-owed';
import { ReminderSweep } from './reminders/reminder-sweep';
import { ChecksDoneElsewhere } from './checks/checks-done-elsewhere.service';
import { CompletedChecksPoller } from './checks/completed-checks-poller';
import { CHANGE_POLLS, PollCursors, type ChangePoll } from './maintenance/change-polls';
import { BulkExportWriter } from './exports/bulk-export-writer';
import { BulkExportDeletion } from './exports/bulk-export-deletion';
import { BulkExportMetrics } from './exports/bulk-export.metrics';
import { BulkExportProcessor } from './exports/bulk-export.processor';

/** The polls for changes other systems make, in the order the poll job runs them: completed infusions first. */
const CHANGE_POLL_CLASSES = [
  ProcedurePoller,
  ScorePoller,
  CompletedChecksPoller,
  AppointmentPoller,
  ClosedOrdersPoller,
  AdministrationsPoller,
  ClearedIssuesPoller,
  TasksChangedInEhrPoller,
  DeceasedPatientsPoller,
];

/**
 * The background workers (@nestjs/bullmq processors): follow-up generation, patient reminders, outcome-driven
 * boosters, checks an EHR completed itself, polling fallback, overdue sweep.
 * Needs ConfigModule, FhirModule, QueueModule, ProtocolCatalogModule and MetricsModule from the importing app
 * (the API when RUN_WORKER is true, or WorkerAppModule alone). Shutdown: @nestjs/bullmq closes each worker,
 * which waits for its active jobs to finish.
 */
@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: WorkerModule,
      providers: [
        QueueJobMetrics,
        FollowUpMetrics,
        FollowUpService,
        PollCursors,
        ...CHANGE_POLL_CLASSES,
        { provide: CHANGE_POLLS, useFactory: (...polls: ChangePoll[]) => polls, inject: CHANGE_POLL_CLASSES },
        OverdueSweep,
        StoppedPlanSweep,
        PausedPlanHolds,
        ContraindicationSweep,
        ProtocolNotFoundIssues,
        AnsweredOrdersSweep,
        ClosingsCrossedByTheEhr,
        DoseChangesCrossedByTheEhr,
        ClosedOrderReviews,
        PlanChanges,
        ProtocolChanges,
        InfusionsInError,
        RetimedInfusions,
        DeceasedPatients,
        DeathsTakenBack,
        PlansAtTheirEnd,
        PlansExtended,
        UnlinkedInfusionIssues,
        DeletedTasks,
        TasksClosedInEhr,
        TasksChangedInEhr,
        WindowsMovedInEhr,
        LateAdministrations,
        CrossedClosings,
        AdministrationRecorded,
        OrderChanged,
        OpenTasksReader,
        MaintenanceSchedules,
        ReminderDelivery,
        FhirCommunicationRecord,
        ReminderSendMarks,
        ReminderSweep,
        BoosterOutcomes,
        ChecksDoneElsewhere,
        ChecksAnsweredElsewhere,
        AppointmentBookings,
        AlertDelivery,
        ClinicAlerts,
        RateNoticeAlerts,
        InfusionsUnderClosedPlans,
        FailingWorkAlerts,
        ClinicAlertMetrics,
        AlertSendClaims,
        AlertsOwed,
        BulkExportWriter,
        BulkExportDeletion,
        BulkExportMetrics,
        // Alerts to the clinic only when someone is to be emailed (CLINIC_ALERT_EMAIL, with SMTP_URL).
        {
          provide: CLINIC_ALERT_SENDER,
          useValue:
            config.smtp && config.clinicAlertEmails.length
              ? new EmailClinicAlertSender(config.smtp, config.clinicAlertEmails)
              : null,
        },
        {
          provide: BoosterOutcomesProcessor,
          useClass: configuredProcessor(BoosterOutcomesProcessor, QUEUES.outcomes, workerOptionsFrom(config, 2)),
        },
        // Email only when SMTP is configured; the FHIR Communication record is always written.
        { provide: REMINDER_SENDERS, useValue: config.smtp ? [new EmailReminderSender(config.smtp)] : [] },
        {
          provide: ReminderProcessor,
          useClass: configuredProcessor(ReminderProcessor, QUEUES.reminders, workerOptionsFrom(config, 4)),
        },
        {
          provide: FollowUpProcessor,
          useClass: configuredProcessor(
            FollowUpProcessor,
            QUEUES.followups,
            workerOptionsFrom(config, config.workerConcurrency * config.followUpBatchSize),
          ),
        },
        // One export at a time per worker: each reads the FHIR server as fast as it answers, and the clinic's work
        // shares that server.
        {
          provide: BulkExportProcessor,
          useClass: configuredProcessor(BulkExportProcessor, QUEUES.exports, workerOptionsFrom(config, 1)),
        },
        // One at a time: a poll or sweep overlapping itself would only do the same work twice.
        {
          provide: MaintenanceProcessor,
          useClass: configuredProcessor(MaintenanceProcessor, QUEUES.maintenance, workerOptionsFrom(config, 1)),
        },
      ],
      exports: [
        FollowUpService,
        ProcedurePoller,
        OverdueSweep,
        StoppedPlanSweep,
        PausedPlanHolds,
        ContraindicationSweep,
        AnsweredOrdersSweep,
        ClosedOrderReviews,
        ClosedOrdersPoller,
        AdministrationsPoller,
        LateAdministrations,
        CrossedClosings,
        ReminderSweep,
        ChecksDoneElsewhere,
      ],
    };
  }
}
