import { Controller, Get, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { Roles } from '@kc/auth';
import { parseWorklistQuery } from './worklist-query';
import { WorklistService } from './worklist.service';
import { taskListAnswer } from './task-list-answer';
import { AuditsPatientAccess } from '../audit/patient-access.decorator';
import { worklistAccess } from '../audit/patient-accesses';

@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('worklist')
export class WorklistController {
  constructor(private readonly worklist: WorklistService) {}

  @Get()
  @AuditsPatientAccess(worklistAccess)
  @ApiOperation({ summary: 'Tasks awaiting approval, soonest due first, paged by cursor (follow next)' })
  @ApiQuery({ name: 'patient', required: false })
  @ApiQuery({ name: 'protocol', required: false, description: 'protocol id or canonical URL' })
  @ApiQuery({ name: 'kind', required: false, description: 'kind of Task (Task.code), e.g. post-infusion-check' })
  @ApiQuery({ name: 'due-before', required: false })
  @ApiQuery({ name: 'due-after', required: false })
  @ApiQuery({ name: 'overdue', required: false, enum: ['true', 'false'] })
  @ApiQuery({ name: 'count', required: false })
  @ApiQuery({ name: 'cursor', required: false, description: "from the previous page's next link" })
  async list(@Query() query: Record<string, unknown>, @Req() req: Request) {
    return taskListAnswer(
      'worklist',
      query,
      req,
      await this.worklist.worklist(parseWorklistQuery(query, this.worklist.kindCodes())),
    );
  }
}
