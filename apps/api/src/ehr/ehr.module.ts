import { Module } from '@nestjs/common';
import { FhirReadController } from './fhir-read.controller';

@Module({ controllers: [FhirReadController] })
export class EhrModule {}
