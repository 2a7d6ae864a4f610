import { Body, Controller, Headers, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { DetectedIssue } from '@medplum/fhirtypes';
import { CurrentCaller, FhirScopes, Roles, type Caller } from '@kc/auth';
import { ContraindicationOverrideService } from './contraindication-override.service';
import { OverrideDto } from './decision.dto';
import { checkId, seenVersion } from './seen-version';
import { DecisionWriter } from './task-review.service';
import { strictBody } from './validation';

@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('detected-issues')
export class ContraindicationOverrideController {
  constructor(
    private readonly overrides: ContraindicationOverrideService,
    private readonly writer: DecisionWriter,
  ) {}

  @FhirScopes({ resourceType: 'DetectedIssue', interaction: 'u' })
  @Post(':id/\\$override')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Override a contraindication with a reason (If-Match): mitigation + Provenance, then the held-back actions are proposed',
  })
  async override(
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body(strictBody) body: OverrideDto,
    @CurrentCaller() caller: Caller,
  ): Promise<DetectedIssue> {
    const issue = await this.writer.read<DetectedIssue>('DetectedIssue', checkId(id));
    return this.overrides.override({
      issue,
      seenVersion: seenVersion(ifMatch, body.versionId),
      caller,
      reason: body.reason,
    });
  }
}
