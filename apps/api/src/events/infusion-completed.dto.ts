import { ApiProperty } from '@nestjs/swagger';
import { IsString, Matches } from 'class-validator';
import { RESOURCE_ID_PATTERN } from '@kc/common';

export class InfusionCompletedDto {
  @ApiProperty({ example: 'Procedure/123', description: 'The completed infusion Procedure on the FHIR server' })
  @IsString()
  @Matches(new RegExp(`^Procedure/${RESOURCE_ID_PATTERN}$`), {
    message: 'procedure must be a reference like Procedure/123',
  })
  procedure!: string;
}

export class ScoreRecordedDto {
  @ApiProperty({
    example: 'Observation/456',
    description: 'A score on the FHIR server (pain NRS 72514-3, PEG 91147-9/91148-7, PHQ-9 44261-6)',
  })
  @IsString()
  @Matches(new RegExp(`^Observation/${RESOURCE_ID_PATTERN}$`), {
    message: 'observation must be a reference like Observation/456',
  })
  observation!: string;
}
