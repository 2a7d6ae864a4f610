import { Module } from '@nestjs/common';
import { ApplyService } from './apply.service';
import { PatientDataLoader } from './patient-data-loader';
import { PlanDefinitionApplyController } from './plan-definition-apply.controller';
import { ProfilePublisher } from './profile-publisher';
import { ProtocolsController } from './protocols.controller';

@Module({
  controllers: [ProtocolsController, PlanDefinitionApplyController],
  providers: [ProfilePublisher, PatientDataLoader, ApplyService],
})
export class ProtocolsModule {}
