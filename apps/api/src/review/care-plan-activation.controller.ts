import { Body, Controller, Headers, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { CarePlan } from '@medplum/fhirtypes';
import { CurrentCaller, FhirScopes, Roles, type Caller } from '@kc/auth';
import { badRequest, conflict } from '@kc/common';
import { PlanRegenerator } from '../protocols/plan-regenerator';
import { assertClearOf, ContraindicationGuard } from './contraindication-guard';
import { ContraindicationOverrideService } from './contraindication-override.service';
import { ActivateDto } from './decision.dto';
import { checkId, seenVersion } from './seen-version';
import { DecisionWriter } from './task-review.service';
import { strictBody } from './validation';

/**
 * A clinician activates a draft CarePlan from $apply. Contraindications (DetectedIssues implicating the plan)
 * block it until overridden with a reason; override=true with a reason overrides each one here (mitigation with
 * If-Match and a Provenance each), then proposes the actions they held back, then activates.
 */
@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('careplans')
export class CarePlanActivationController {
  constructor(
    private readonly writer: DecisionWriter,
    private readonly guard: ContraindicationGuard,
    private readonly overrides: ContraindicationOverrideService,
    private readonly regenerator: PlanRegenerator,
  ) {}

  @FhirScopes({ resourceType: 'CarePlan', interaction: 'u' })
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
    const carePlan = await this.writer.read<CarePlan>('CarePlan', checkId(id));
    const version = seenVersion(ifMatch, body.versionId);
    if (body.override && !body.reason) throw badRequest('An override needs a reason');
    if (carePlan.status !== 'draft') throw conflict(`CarePlan is ${carePlan.status}, not draft`);
    const open = await this.guard.unresolved(`CarePlan/${carePlan.id}`);
    // Judged on this one read, which the overrides below write on: never a plan activated over an issue it read.
    if (!body.override) assertClearOf(`CarePlan/${carePlan.id}`, open);
    for (const issue of open) {
      await this.overrides.override({
        issue,
        seenVersion: issue.meta!.versionId!,
        caller,
        reason: body.reason!,
        regenerate: false,
      });
    }
    const activated = await this.writer.write<CarePlan>({
      current: carePlan,
      seenVersion: version,
      caller,
      decision: open.length ? 'activate (override)' : 'activate',
      reason: body.reason,
      // Checked to be draft above; a concurrent change since is caught by If-Match.
      change: (plan) => ({ ...plan, status: 'active' }),
    });
    if (!open.length) return activated;
    await this.regenerator.afterOverride(carePlan.id!);
    return this.writer.read<CarePlan>('CarePlan', carePlan.id!);
  }
}
