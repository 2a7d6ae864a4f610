import { ApiProperty } from '@nestjs/swagger';
import { IsString, Matches } from 'class-validator';

export class InfusionCompletedDto {
  @ApiProperty({ example: 'Procedure/123', description: 'The completed infusion Procedure on the FHIR server' })
  @IsString()
  @Matches(/^Procedure\/[A-Za-z0-9\-.]{1,64}$/, { message: 'procedure must be a reference like Procedure/123' })
  procedure!: string;
}
