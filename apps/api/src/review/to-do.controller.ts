import { Controller, Get, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { Roles } from '@kc/auth';
import { parseWorklistQuery } from './worklist-query';
import { WorklistService } from './worklist.service';
import { taskListAnswer } from './task-list-answer';
import { AuditsPatientAccess } from '../audit/patient-access.decorator';
import { worklistAccess } from '../audit/patient-accesses';

/**
 * The to-do list: Tasks a clinician approved that are not done yet (Task.status ready: a check to make, an
 * infusion to give), soonest due first, with the worklist's filters and paging. A check leaves it when it is
 * recorded, an infusion when its Procedure is, any Task when it is rejected or superseded.
 */
@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('to-do')
export class ToDoController {
  constructor(private readonly lists: WorklistService) {}

  @Get()
  @AuditsPatientAccess(worklistAccess)
  @ApiOperation({ summary: 'Approved Tasks not yet done, soonest due first, paged by cursor (follow next)' })
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
      'to-do',
      query,
      req,
      await this.lists.toDo(parseWorklistQuery(query, this.lists.kindCodes())),
    );
  }
}
