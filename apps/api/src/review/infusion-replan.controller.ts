import { Body, Controller, Headers, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { DetectedIssue } from '@medplum/fhirtypes';
import { CurrentCaller, FhirScopes, Roles, type Caller } from '@kc/auth';
import { OverrideDto } from './decision.dto';
import { InfusionReplanService } from './infusion-replan.service';
import { checkId, seenVersion } from './seen-version';
import { DecisionWriter } from './task-review.service';
import { strictBody } from './validation';

@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('detected-issues')
export class InfusionReplanController {
  constructor(
    private readonly replans: InfusionReplanService,
    private readonly writer: DecisionWriter,
  ) {}

  @FhirScopes({ resourceType: 'Task', interaction: 'u' })
  @Post(':id/\\$replan')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Plan again without an infusion recorded in error (If-Match): what it planned withdrawn, what it closed entered in error and proposed again for approval, the issue resolved, one Provenance',
  })
  async replan(
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body(strictBody) body: OverrideDto,
    @CurrentCaller() caller: Caller,
  ): Promise<DetectedIssue> {
    const issue = await this.writer.read<DetectedIssue>('DetectedIssue', checkId(id));
    return this.replans.replan({
      issue,
      seenVersion: seenVersion(ifMatch, body.versionId),
      caller,
      reason: body.reason,
    });
  }
}
