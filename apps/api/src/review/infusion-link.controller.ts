import { Body, Controller, Headers, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { DetectedIssue } from '@medplum/fhirtypes';
import { CurrentCaller, FhirScopes, Roles, type Caller } from '@kc/auth';
import { LinkInfusionDto } from './decision.dto';
import { InfusionLinkService } from './infusion-link.service';
import { checkId, seenVersion } from './seen-version';
import { DecisionWriter } from './task-review.service';
import { strictBody } from './validation';

@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('detected-issues')
export class InfusionLinkController {
  constructor(
    private readonly links: InfusionLinkService,
    private readonly writer: DecisionWriter,
  ) {}

  @FhirScopes({ resourceType: 'Procedure', interaction: 'u' })
  @Post(':id/\\$link-infusion')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Link an infusion charted naming no care plan to the plan it was a session of (If-Match): the infusion linked, the issue resolved, one Provenance; its holds released and the infusion followed up',
  })
  async link(
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body(strictBody) body: LinkInfusionDto,
    @CurrentCaller() caller: Caller,
  ): Promise<DetectedIssue> {
    const issue = await this.writer.read<DetectedIssue>('DetectedIssue', checkId(id));
    return this.links.link({
      issue,
      carePlan: body.carePlan,
      seenVersion: seenVersion(ifMatch, body.versionId),
      caller,
      reason: body.reason,
    });
  }
}
