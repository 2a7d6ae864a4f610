import { Controller, Get, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { FhirScopes, Roles, type AuthenticatedRequest } from '@kc/auth';
import { UNASSIGNED } from '@kc/worklist-index';
import { WorklistService } from './worklist.service';
import { taskListAnswer } from './task-list-answer';
import { ApiTaskListQuery } from './task-list-query.decorator';
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

  @FhirScopes({ resourceType: 'Task', interaction: 's' })
  @Get()
  @AuditsPatientAccess(worklistAccess)
  @ApiOperation({ summary: 'Approved Tasks not yet done, soonest due first, paged by cursor (follow next)' })
  @ApiTaskListQuery()
  async list(@Query() query: Record<string, unknown>, @Req() req: Request) {
    return taskListAnswer(
      'to-do',
      query,
      req,
      await this.lists.toDo(this.lists.parse(query, (req as AuthenticatedRequest).caller?.fhirUser)),
    );
  }

  @FhirScopes({ resourceType: 'Task', interaction: 's' })
  @Get('owners')
  @ApiOperation({
    summary:
      "Whose the to-do list's Tasks are: per owner (Task.owner; null: nobody's yet) how many, and their name, most first",
  })
  async owners() {
    const owners = await this.lists.toDoOwners();
    return {
      owners: owners.map((o) => ({
        owner: o.owner === UNASSIGNED ? null : o.owner,
        display: o.display,
        count: o.count,
      })),
    };
  }
}
