import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { CarePlan, Parameters } from '@medplum/fhirtypes';
import { assertScopesAllow, CurrentCaller, FhirScopes, Roles, type Caller } from '@kc/auth';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { badRequest } from '@kc/common';
import { parseApplyParameters, queryToParameters, type ApplyRequest } from './apply-parameters';
import { applyResultCarePlan } from './apply-result-careplan';
import { applyResultParameters } from './apply-result-parameters';
import type { ResolvedPlan } from '@kc/nest-core';
import { ApplyService } from './apply.service';
import { AuditsPatientAccess } from '../audit/patient-access.decorator';
import { applyAccess } from '../audit/patient-accesses';

/**
 * PlanDefinition/$apply as R4 defines it: instance level (/PlanDefinition/{id}/$apply) and type level
 * (planDefinition as a canonical or a resource, or the CPG/R5 `url` + `version`), POST with Parameters or GET
 * with query parameters. The plan may come from fhir-profiles/ or from the FHIR server.
 */
@ApiTags('protocols')
@ApiBearerAuth()
@Roles('clinician', 'integration')
@Controller('fhir/PlanDefinition')
export class PlanDefinitionApplyController {
  constructor(
    private readonly applyService: ApplyService,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  /** The request's Parameters, a start date given alone taken as that day in the clinic. */
  private parse(body: unknown): ApplyRequest {
    return parseApplyParameters(body, this.config.clinicTimeZone);
  }

  @FhirScopes({ resourceType: 'PlanDefinition', interaction: 'r' }, { resourceType: 'Patient', interaction: 'r' })
  @Post(':id/\\$apply')
  @AuditsPatientAccess(applyAccess)
  @HttpCode(200)
  @ApiOperation({
    summary: 'Apply a protocol to a patient: CarePlan + Tasks with due windows (persist=true writes them)',
  })
  applyInstance(
    @Param('id') id: string,
    @Body() body: unknown,
    @CurrentCaller() caller: Caller,
  ): Promise<CarePlan | Parameters> {
    return this.instance(id, this.parse(body), caller);
  }

  @FhirScopes({ resourceType: 'PlanDefinition', interaction: 'r' }, { resourceType: 'Patient', interaction: 'r' })
  @Get(':id/\\$apply')
  @AuditsPatientAccess(applyAccess)
  @ApiOperation({
    summary:
      'GET form of the instance-level $apply (subject, startDate, persist, encounter, practitioner, ... as query parameters)',
  })
  applyInstanceGet(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentCaller() caller: Caller,
  ): Promise<CarePlan | Parameters> {
    return this.instance(id, this.parse(queryToParameters(query)), caller);
  }

  @FhirScopes({ resourceType: 'PlanDefinition', interaction: 'r' }, { resourceType: 'Patient', interaction: 'r' })
  @Post('\\$apply')
  @AuditsPatientAccess(applyAccess)
  @HttpCode(200)
  @ApiOperation({ summary: 'Type-level $apply: planDefinition (canonical or resource) or url names the protocol' })
  applyType(@Body() body: unknown, @CurrentCaller() caller: Caller): Promise<CarePlan | Parameters> {
    return this.type(this.parse(body), caller);
  }

  @FhirScopes({ resourceType: 'PlanDefinition', interaction: 'r' }, { resourceType: 'Patient', interaction: 'r' })
  @Get('\\$apply')
  @AuditsPatientAccess(applyAccess)
  @ApiOperation({ summary: 'GET form of the type-level $apply (url or planDefinition, subject, ...)' })
  applyTypeGet(
    @Query() query: Record<string, unknown>,
    @CurrentCaller() caller: Caller,
  ): Promise<CarePlan | Parameters> {
    return this.type(this.parse(queryToParameters(query)), caller);
  }

  private async instance(id: string, request: ApplyRequest, caller: Caller): Promise<CarePlan | Parameters> {
    assertPersistScopes(request, caller);
    if (request.planResource) throw badRequest('planDefinition as a resource is for the type-level operation');
    const resolved = await this.applyService.findPlan(id);
    const { plan } = resolved;
    if (
      request.planDefinition &&
      request.planDefinition !== plan.url &&
      request.planDefinition !== `${plan.url}|${plan.version}`
    ) {
      throw badRequest('planDefinition parameter does not match the PlanDefinition in the URL');
    }
    return this.run(resolved, request);
  }

  private async type(request: ApplyRequest, caller: Caller): Promise<CarePlan | Parameters> {
    assertPersistScopes(request, caller);
    const resolved = request.planResource
      ? await this.applyService.inline(request.planResource, request.persist)
      : await this.applyService.findPlan(request.planDefinition);
    return this.run(resolved, request);
  }

  private async run(resolved: ResolvedPlan, request: ApplyRequest): Promise<CarePlan | Parameters> {
    const applied = await this.applyService.enrol(resolved, request);
    return request.output === 'parameters'
      ? applyResultParameters(applied.result, applied.persisted, request.persist ? undefined : request.planResource)
      : applyResultCarePlan(applied.result, applied.persisted);
  }
}

/**
 * A persisted `$apply` writes the CarePlan and its requests (and an inline PlanDefinition): a token with SMART scopes
 * must grant writing them. One not persisted only reads (FhirScopes on the handlers).
 */
function assertPersistScopes(request: ApplyRequest, caller: Caller): void {
  if (!request.persist) return;
  assertScopesAllow(caller, [
    { resourceType: 'CarePlan', interaction: 'c' },
    ...(request.planResource ? [{ resourceType: 'PlanDefinition', interaction: 'c' } as const] : []),
  ]);
}
