import { Module } from '@nestjs/common';
import { ApplyService } from './apply.service';
import { PatientDataLoader } from './patient-data-loader';
import { PlanDefinitionApplyController } from './plan-definition-apply.controller';
import { PlanRegenerator } from './plan-regenerator';
import { ProfilePublisher } from './profile-publisher';
import { ProtocolsController } from './protocols.controller';

@Module({
  controllers: [ProtocolsController, PlanDefinitionApplyController],
  providers: [ProfilePublisher, PatientDataLoader, ApplyService, PlanRegenerator],
  exports: [ApplyService, PlanRegenerator],
})
export class ProtocolsModule {}
