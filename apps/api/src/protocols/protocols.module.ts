import { Module } from '@nestjs/common';
import { ApplyService } from './apply.service';
import { PatientDataLoader } from './patient-data-loader';
import { PlanDefinitionApplyController } from './plan-definition-apply.controller';
import { ProfilePublisher } from './profile-publisher';
import { protocolCatalogProvider } from './protocol-catalog.provider';
import { ProtocolsController } from './protocols.controller';

@Module({
  controllers: [ProtocolsController, PlanDefinitionApplyController],
  providers: [protocolCatalogProvider, ProfilePublisher, PatientDataLoader, ApplyService],
  exports: [protocolCatalogProvider],
})
export class ProtocolsModule {}
