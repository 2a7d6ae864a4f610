import { Body, Controller, Headers, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { CarePlan, DetectedIssue } from '@medplum/fhirtypes';
import { CurrentCaller, Roles, type Caller } from '@kc/auth';
import { badRequest, unprocessable } from '@kc/common';
import { FhirClient } from '@kc/fhir';
import { ActivateDto } from './decision.dto';
import { checkId, seenVersion } from './seen-version';
import { DecisionRefused } from './task-decisions';
import { DecisionWriter } from './task-review.service';
import { strictBody } from './validation';

/**
 * A clinician activates a draft CarePlan from $apply. Contraindications (DetectedIssues implicating the plan)
 * block it until the clinician overrides with a reason, which is recorded on each issue as a mitigation.
 */
@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('careplans')
export class CarePlanActivationController {
  constructor(
    private readonly decisions: DecisionWriter,
    private readonly fhir: FhirClient,
  ) {}

  @Post(':id/\\$activate')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Activate a draft CarePlan (override=true with a reason when contraindications were found)',
  })
  async activate(
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body(strictBody) body: ActivateDto,
    @CurrentCaller() caller: Caller,
  ): Promise<CarePlan> {
    const carePlan = await this.decisions.read<CarePlan>('CarePlan', checkId(id));
    const version = seenVersion(ifMatch, body.versionId);
    if (body.override && !body.reason) throw badRequest('An override needs a reason');
    const issues = (
      await this.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${carePlan.id}` })
    ).filter((i) => !i.mitigation?.length);
    if (issues.length && !body.override) {
      throw unprocessable(
        `Activation blocked by ${issues.length} contraindication(s): ${issues.map((i) => i.code?.text ?? i.code?.coding?.[0]?.code).join('; ')}. A clinician may override with a reason.`,
      );
    }
    const now = new Date().toISOString();
    const mitigated = issues.map((issue) => ({
      ...issue,
      status: 'final' as const,
      mitigation: [
        {
          action: { text: 'Clinician override' },
          date: now,
          author: caller.fhirUser ? { reference: caller.fhirUser } : undefined,
        },
      ],
    }));
    return this.decisions.write(
      carePlan,
      version,
      caller,
      issues.length ? 'activate (override)' : 'activate',
      (plan) => {
        if (plan.status !== 'draft')
          throw new DecisionRefused('already-decided', `CarePlan is ${plan.status}, not draft`);
        return { ...plan, status: 'active' };
      },
      body.reason,
      mitigated,
    );
  }
}
