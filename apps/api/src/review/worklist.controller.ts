import { Controller, Get, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { FhirScopes, Roles, type AuthenticatedRequest } from '@kc/auth';
import { WorklistService } from './worklist.service';
import { taskListAnswer } from './task-list-answer';
import { ApiTaskListQuery } from './task-list-query.decorator';
import { AuditsPatientAccess } from '../audit/patient-access.decorator';
import { worklistAccess } from '../audit/patient-accesses';

@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('worklist')
export class WorklistController {
  constructor(private readonly worklist: WorklistService) {}

  @FhirScopes({ resourceType: 'Task', interaction: 's' })
  @Get()
  @AuditsPatientAccess(worklistAccess)
  @ApiOperation({ summary: 'Tasks awaiting approval, soonest due first, paged by cursor (follow next)' })
  @ApiTaskListQuery()
  async list(@Query() query: Record<string, unknown>, @Req() req: Request) {
    return taskListAnswer(
      'worklist',
      query,
      req,
      await this.worklist.worklist(this.worklist.parse(query, (req as AuthenticatedRequest).caller?.fhirUser)),
    );
  }
}
