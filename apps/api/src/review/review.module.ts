import { Module } from '@nestjs/common';
import { CarePlanActivationController } from './care-plan-activation.controller';
import { TaskDecisionsController } from './task-decisions.controller';
import { DecisionWriter } from './task-review.service';
import { WorklistController } from './worklist.controller';
import { WorklistService } from './worklist.service';

@Module({
  controllers: [WorklistController, TaskDecisionsController, CarePlanActivationController],
  providers: [DecisionWriter, WorklistService],
})
export class ReviewModule {}
