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
