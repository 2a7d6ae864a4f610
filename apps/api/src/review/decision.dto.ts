import { ApiProperty, ApiPropertyOptional, IntersectionType } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsDefined,
  IsISO8601,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  IsPositive,
  ValidateNested,
} from 'class-validator';
import { RESOURCE_ID, TASK_OWNER_REFERENCE } from '@kc/common';

const VERSION = RESOURCE_ID;

export class VersionedDto {
  @ApiPropertyOptional({ description: 'The Task version the clinician saw (or send an If-Match header)' })
  @IsOptional()
  @IsString()
  @Matches(VERSION)
  versionId?: string;
}

/** `$assign`: as an approval's owner; absent, the caller takes it. */
export class AssignDto extends VersionedDto {
  @ApiPropertyOptional({ example: 'Practitioner/123', description: 'Who will carry the task out' })
  @IsOptional()
  @IsString()
  @Matches(TASK_OWNER_REFERENCE, { message: 'owner must be a reference like Practitioner/123' })
  owner?: string;
}

/** A rate per kg body weight, in the unit of the protocol's titration (UCUM, e.g. mg/kg/h). */
export class RateDto {
  @ApiProperty({ example: 0.75 })
  @IsNumber({ allowNaN: false, allowInfinity: false, maxDecimalPlaces: 3 })
  @IsPositive()
  value!: number;

  @ApiProperty({ example: 'mg/kg/h' })
  @IsString()
  @Length(1, 32)
  unit!: string;
}

/** A bolus per kg body weight at an infusion's start, in the unit of the protocol's bolus limit (UCUM, e.g. mg/kg). */
export class BolusDto {
  @ApiProperty({ example: 0.2 })
  @IsNumber({ allowNaN: false, allowInfinity: false, maxDecimalPlaces: 3 })
  @IsPositive()
  value!: number;

  @ApiProperty({ example: 'mg/kg' })
  @IsString()
  @Length(1, 32)
  unit!: string;
}

/** What an approval of an infusion may ask its order to give besides the proposal's dose ($approve, $reschedule). */
export class InfusionDoseDto {
  @ApiPropertyOptional({
    type: RateDto,
    description:
      "An infusion's rate per kg, within its protocol's range (titration to response); absent, the proposal's. The order is given at it times the latest body weight on record.",
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => RateDto)
  rate?: RateDto;

  @ApiPropertyOptional({
    type: BolusDto,
    description:
      "A bolus per kg at the infusion's start, up to its protocol's ceiling (none is proposed). The order gives it as a second dosage, at the latest body weight on record.",
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => BolusDto)
  bolus?: BolusDto;
}

/** Orders on record an approval's order is meant to stand beside ($approve, $reschedule of a medication). */
export class AlongsideDto {
  @ApiPropertyOptional({
    example: ['MedicationRequest/123'],
    description:
      "Orders of the drug on record for the session's time that the new order is meant to stand beside (refused otherwise, as ordering the session twice): each named as the refusal named it.",
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @Matches(/^MedicationRequest\/[A-Za-z0-9\-.]{1,64}$/, {
    each: true,
    message: 'alongside must name orders like MedicationRequest/123',
  })
  alongside?: string[];
}

/** The EHR's order an approval of an infusion rests on, instead of writing one ($approve). */
export class OnOrderDto {
  @ApiPropertyOptional({
    example: 'MedicationRequest/123',
    description:
      "An open order of the infusion's drug the EHR already has for this session: the approval rests on it and writes no order (the session is given at its dose).",
  })
  @IsOptional()
  @IsString()
  @Matches(/^MedicationRequest\/[A-Za-z0-9\-.]{1,64}$/, {
    message: 'onOrder must name an order like MedicationRequest/123',
  })
  onOrder?: string;
}

/** Why a Task due outside its protocol window is approved there all the same ($approve). */
export class OutsideWindowDto {
  @ApiPropertyOptional({
    example: 'Patient travelling until the 20th; two days later than the protocol allows agreed with Dr Ruiz',
    description:
      "Needed to approve a Task due outside its protocol window (moved so in the EHR, or its infusion re-timed since): why it is approved there. Recorded as the approval's Provenance reason.",
  })
  @IsOptional()
  @IsString()
  @Length(1, 1000)
  outsideWindowReason?: string;
}

export class ApproveDto extends IntersectionType(
  IntersectionType(IntersectionType(AssignDto, InfusionDoseDto), IntersectionType(AlongsideDto, OnOrderDto)),
  OutsideWindowDto,
) {}

export class RejectDto extends VersionedDto {
  @ApiProperty({ example: 'Patient reports lasting relief; no booster needed' })
  @IsString()
  @Length(1, 1000)
  reason!: string;
}

/** A reschedule approves the Task for its new window: an infusion awaiting approval takes a dose as $approve's. */
export class RescheduleDto extends IntersectionType(IntersectionType(VersionedDto, InfusionDoseDto), AlongsideDto) {
  @ApiProperty({
    example: '2027-02-20T09:00:00Z',
    description: "a dateTime, or a date alone: that day from midnight in the clinic's time zone (CLINIC_TIME_ZONE)",
  })
  @IsISO8601({ strict: true })
  start!: string;

  @ApiProperty({
    example: '2027-02-22T17:00:00Z',
    description: "a dateTime, or a date alone: that day's midnight in the clinic's time zone (its start)",
  })
  @IsISO8601({ strict: true })
  end!: string;
}

/** `$change-dose`: the whole dose an approved infusion's new order gives. */
export class ChangeDoseDto extends VersionedDto {
  @ApiProperty({
    type: RateDto,
    description: "The rate per kg, within its protocol's range; the new order gives it times the latest body weight.",
  })
  @IsDefined({ message: 'rate is required: the rate per kg the new order gives' })
  @ValidateNested()
  @Type(() => RateDto)
  rate!: RateDto;

  @ApiPropertyOptional({
    type: BolusDto,
    description:
      "A bolus per kg at the infusion's start, up to its protocol's ceiling; absent, the new order gives none.",
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => BolusDto)
  bolus?: BolusDto;

  @ApiPropertyOptional({ example: 'Dissociation at the last session; lowering the rate' })
  @IsOptional()
  @IsString()
  @Length(1, 1000)
  reason?: string;
}

export class BulkItemDto {
  @IsString()
  @Matches(VERSION)
  id!: string;

  @IsString()
  @Matches(VERSION)
  versionId!: string;
}

export class BulkApproveDto {
  @ApiProperty({ type: [BulkItemDto] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  @Type(() => BulkItemDto)
  tasks!: BulkItemDto[];

  @ApiPropertyOptional({ example: 'Practitioner/123' })
  @IsOptional()
  @IsString()
  @Matches(TASK_OWNER_REFERENCE)
  owner?: string;
}

export class ActivateDto extends VersionedDto {
  @ApiPropertyOptional({ description: 'Activate despite contraindications (needs reason)' })
  @IsOptional()
  @IsBoolean()
  override?: boolean;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 1000)
  reason?: string;
}

export class OverrideDto extends VersionedDto {
  @ApiProperty({ example: 'Pregnancy test negative on 2026-11-20; condition entered in error at the referring clinic' })
  @IsString()
  @Length(1, 1000)
  reason!: string;
}

export class CompleteTaskDto extends VersionedDto {
  @ApiProperty({
    description:
      "The answers: a FHIR QuestionnaireResponse to the Task's Questionnaire (GET /tasks/{id}/questionnaire); its items only are read",
    example: {
      resourceType: 'QuestionnaireResponse',
      status: 'completed',
      item: [
        { linkId: 'pain-now', answer: [{ valueInteger: 4 }] },
        { linkId: 'peg-average-pain', answer: [{ valueInteger: 5 }] },
      ],
    },
  })
  @IsObject()
  response!: Record<string, unknown>;
}

/** `$link-infusion`: the care plan an infusion charted naming none was a session of. */
export class LinkInfusionDto extends VersionedDto {
  @ApiProperty({
    example: 'CarePlan/123',
    description:
      "One of the plans the issue implicates (the patient's open plans that follow up infusions of its code)",
  })
  @IsString()
  @Matches(/^CarePlan\/[A-Za-z0-9\-.]{1,64}$/, { message: 'carePlan must name a plan like CarePlan/123' })
  carePlan!: string;

  @ApiPropertyOptional({ example: 'Ketamine session given on the ward; charted without its plan' })
  @IsOptional()
  @IsString()
  @Length(1, 1000)
  reason?: string;
}
