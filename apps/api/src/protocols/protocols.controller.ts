import { Controller, Get, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { PlanDefinition } from '@medplum/fhirtypes';
import { FhirScopes, Roles } from '@kc/auth';
import { notFound } from '@kc/common';
import { ProtocolCatalog, triggeredActions, INFUSION_COMPLETED_TRIGGER } from '@kc/protocols';

/** The protocol catalog: what a clinic can enrol patients in. */
@ApiTags('protocols')
@ApiBearerAuth()
@Roles('clinician', 'integration')
@Controller('protocols')
export class ProtocolsController {
  constructor(private readonly catalog: ProtocolCatalog) {}

  @FhirScopes({ resourceType: 'PlanDefinition', interaction: 'r' })
  @Get()
  @ApiOperation({ summary: 'List the protocols (PlanDefinitions) with their canonical URL and version' })
  list() {
    const available = this.catalog.planDefinitions().map((plan) => ({
      status: 'available' as const,
      id: plan.id,
      url: plan.url,
      version: plan.version,
      title: plan.title,
      description: plan.description,
      followUps: triggeredActions(plan, INFUSION_COMPLETED_TRIGGER).map((a) => ({ id: a.id, title: a.title })),
      apply: `/fhir/PlanDefinition/${plan.id}/$apply`,
    }));
    // Left out at load (invalid, or referencing something invalid): listed so a clinic sees what is missing.
    const unavailable = this.catalog.unavailable
      .filter((u) => u.resourceType === 'PlanDefinition' || u.resourceType === undefined)
      .map((u) => ({ status: 'unavailable' as const, id: u.id, url: u.url, file: u.file, problems: u.problems }));
    return [...available, ...unavailable];
  }

  @FhirScopes({ resourceType: 'PlanDefinition', interaction: 'r' })
  @Get(':id')
  @ApiOperation({ summary: 'One protocol as its FHIR PlanDefinition' })
  get(@Param('id') id: string): PlanDefinition {
    const plan = this.catalog.findPlanDefinition(id);
    if (!plan) throw notFound(`Unknown protocol ${id}`);
    return plan;
  }
}
