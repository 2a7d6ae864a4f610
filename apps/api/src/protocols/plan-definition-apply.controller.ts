import { Body, Controller, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Parameters } from '@medplum/fhirtypes';
import { Roles } from '@kc/auth';
import { badRequest } from '@kc/common';
import { parseApplyParameters } from './apply-parameters';
import { applyResultParameters } from './apply-result-parameters';
import { ApplyService } from './apply.service';

/** PlanDefinition/$apply, instance- and type-level, FHIR operation semantics (Parameters in and out). */
@ApiTags('protocols')
@ApiBearerAuth()
@Controller('fhir/PlanDefinition')
export class PlanDefinitionApplyController {
  constructor(private readonly applyService: ApplyService) {}

  @Post(':id/\\$apply')
  @HttpCode(200)
  @Roles('clinician', 'integration')
  @ApiOperation({
    summary: 'Apply a protocol to a patient: CarePlan + Tasks with due windows (persist=true writes them)',
  })
  async applyInstance(@Param('id') id: string, @Body() body: unknown): Promise<Parameters> {
    const request = parseApplyParameters(body);
    const plan = this.applyService.findPlan(id);
    if (
      request.planDefinition &&
      request.planDefinition !== plan.url &&
      request.planDefinition !== `${plan.url}|${plan.version}`
    ) {
      throw badRequest('planDefinition parameter does not match the PlanDefinition in the URL');
    }
    const applied = await this.applyService.apply(plan, request);
    return applyResultParameters(applied.result, applied.persisted);
  }

  @Post('\\$apply')
  @HttpCode(200)
  @Roles('clinician', 'integration')
  @ApiOperation({ summary: 'Type-level $apply: the planDefinition parameter names the protocol by canonical URL' })
  async applyType(@Body() body: unknown): Promise<Parameters> {
    const request = parseApplyParameters(body);
    const plan = this.applyService.findPlan(request.planDefinition);
    const applied = await this.applyService.apply(plan, request);
    return applyResultParameters(applied.result, applied.persisted);
  }
}
