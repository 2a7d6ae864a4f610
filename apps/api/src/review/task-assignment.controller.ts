import { Body, Controller, Headers, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Task } from '@medplum/fhirtypes';
import { CurrentCaller, FhirScopes, Roles, type Caller } from '@kc/auth';
import { AssignDto, VersionedDto } from './decision.dto';
import { checkId, seenVersion } from './seen-version';
import { TaskAssignmentService } from './task-assignment.service';
import { strictBody } from './validation';

/** Who is to do a Task (Task.owner). Each needs the version seen; each leaves a Provenance. */
@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('tasks')
export class TaskAssignmentController {
  constructor(private readonly assignments: TaskAssignmentService) {}

  @FhirScopes({ resourceType: 'Task', interaction: 'u' })
  @Post(':id/\\$assign')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Assign an open task (Task.owner) to you, or to the Practitioner given as owner (422 if the FHIR server has none such); 409 once the task is closed',
  })
  async assign(
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body(strictBody) body: AssignDto,
    @CurrentCaller() caller: Caller,
  ): Promise<Task> {
    return this.assignments.assign({
      taskId: checkId(id),
      seenVersion: seenVersion(ifMatch, body.versionId),
      caller,
      owner: body.owner,
    });
  }

  @FhirScopes({ resourceType: 'Task', interaction: 'u' })
  @Post(':id/\\$unassign')
  @HttpCode(200)
  @ApiOperation({ summary: 'Give an open task back: no owner, on the list of tasks nobody has taken' })
  async unassign(
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body(strictBody) body: VersionedDto,
    @CurrentCaller() caller: Caller,
  ): Promise<Task> {
    return this.assignments.unassign({
      taskId: checkId(id),
      seenVersion: seenVersion(ifMatch, body.versionId),
      caller,
    });
  }
}
