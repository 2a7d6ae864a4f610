import { Module } from '@nestjs/common';
import { ClinicianUiController } from './clinician-ui.controller';
import { ClinicianViewsController } from './clinician-views.controller';
import { PatientTimelineService } from './patient-timeline.service';
import { WorklistEnricher } from './worklist-enricher';

/** The /ui page, its sign-in settings, and the JSON it shows (enriched worklist, patient timeline). */
@Module({
  controllers: [ClinicianUiController, ClinicianViewsController],
  providers: [WorklistEnricher, PatientTimelineService],
})
export class ClinicianUiModule {}
