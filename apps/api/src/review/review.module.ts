import { Module } from '@nestjs/common';
import { ProtocolsModule } from '../protocols/protocols.module';
import { CarePlanActivationController } from './care-plan-activation.controller';
import { CheckRecordingService } from './check-recording.service';
import { ContraindicationGuard } from './contraindication-guard';
import { ContraindicationOverrideController } from './contraindication-override.controller';
import { ContraindicationOverrideService } from './contraindication-override.service';
import { InfusionLinkController } from './infusion-link.controller';
import { InfusionLinkService } from './infusion-link.service';
import { InfusionReplanController } from './infusion-replan.controller';
import { InfusionReplanService } from './infusion-replan.service';
import { CurrentContraindications } from './current-contraindications';
import { DoseChangeController } from './dose-change.controller';
import { CrossedEhrOrders } from './crossed-ehr-orders';
import { DoseChangeService } from './dose-change.service';
import { ReminderNoticeController } from './reminder-notice.controller';
import { TaskAssignmentController } from './task-assignment.controller';
import { TaskAssignmentService } from './task-assignment.service';
import { TaskCompletionController } from './task-completion.controller';
import { TaskDecisionService } from './task-decision.service';
import { TaskDecisionsController } from './task-decisions.controller';
import { TaskReminders } from './task-reminders';
import { DecisionWriter } from './task-review.service';
import { ToDoController } from './to-do.controller';
import { WorklistController } from './worklist.controller';
import { WorklistService } from './worklist.service';

@Module({
  imports: [ProtocolsModule],
  controllers: [
    WorklistController,
    ToDoController,
    TaskDecisionsController,
    CarePlanActivationController,
    ContraindicationOverrideController,
    InfusionReplanController,
    InfusionLinkController,
    ReminderNoticeController,
    TaskCompletionController,
    TaskAssignmentController,
    DoseChangeController,
  ],
  providers: [
    DecisionWriter,
    CheckRecordingService,
    WorklistService,
    ContraindicationGuard,
    ContraindicationOverrideService,
    InfusionReplanService,
    InfusionLinkService,
    CurrentContraindications,
    TaskDecisionService,
    TaskAssignmentService,
    DoseChangeService,
    CrossedEhrOrders,
    TaskReminders,
  ],
})
export class ReviewModule {}
