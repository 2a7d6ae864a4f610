import { Module } from '@nestjs/common';
import { FhirReadController } from './fhir-read.controller';
import { ClinicianUiController } from '../clinician-ui/clinician-ui.controller';

@Module({ controllers: [FhirReadController, ClinicianUiController] })
export class EhrModule {}
