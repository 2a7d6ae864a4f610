import { Body, Controller, Get, Headers, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Questionnaire, Task } from '@medplum/fhirtypes';
import { CurrentCaller, FhirScopes, Roles, type Caller } from '@kc/auth';
import { CheckRecordingService } from './check-recording.service';
import { CompleteTaskDto } from './decision.dto';
import { responseItemsOf } from './questionnaire-response-body';
import { checkId, seenVersion } from './seen-version';
import { strictBody } from './validation';

/** Tasks done by answering a Questionnaire (the post-infusion check): what to ask, and the answers recorded. */
@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('tasks')
export class TaskCompletionController {
  constructor(private readonly checks: CheckRecordingService) {}

  @FhirScopes({ resourceType: 'Questionnaire', interaction: 'r' })
  @Get(':id/questionnaire')
  @ApiOperation({
    summary:
      "The Questionnaire the Task is done with (its protocol action's cpg-collectWith); 409 for a Task done otherwise",
  })
  questionnaire(@Param('id') id: string): Promise<Questionnaire> {
    return this.checks.questionnaireFor(checkId(id));
  }

  @FhirScopes({ resourceType: 'Task', interaction: 'u' }, { resourceType: 'QuestionnaireResponse', interaction: 'c' })
  @Post(':id/\\$complete')
  @HttpCode(200)
  @ApiOperation({
    summary:
      "Record the answers to the Task's Questionnaire and complete it: a QuestionnaireResponse, the Observations it extracts (scores, effects) and a Provenance, in one transaction. 400 naming each bad answer; 409 for a Task done otherwise or already closed",
  })
  complete(
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body(strictBody) body: CompleteTaskDto,
    @CurrentCaller() caller: Caller,
  ): Promise<Task> {
    return this.checks.record({
      taskId: checkId(id),
      seenVersion: seenVersion(ifMatch, body.versionId),
      caller,
      answers: responseItemsOf(body.response),
    });
  }
}
