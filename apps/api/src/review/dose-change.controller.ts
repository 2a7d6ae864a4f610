import { Body, Controller, Headers, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Task } from '@medplum/fhirtypes';
import { CurrentCaller, FhirScopes, Roles, type Caller } from '@kc/auth';
import { ChangeDoseDto } from './decision.dto';
import { DoseChangeService } from './dose-change.service';
import { checkId, seenVersion } from './seen-version';
import { strictBody } from './validation';

/** Another dose for an approved infusion before its session: its order replaced. Needs the version seen; leaves a Provenance. */
@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('tasks')
export class DoseChangeController {
  constructor(private readonly doses: DoseChangeService) {}

  @FhirScopes({ resourceType: 'Task', interaction: 'u' }, { resourceType: 'MedicationRequest', interaction: 'c' })
  @Post(':id/\\$change-dose')
  @HttpCode(200)
  @ApiOperation({
    summary:
      "Change the dose of an approved infusion not given yet: a new order at `rate` per kg (within the protocol's range, times the latest body weight) and `bolus` if given, signed by the caller, replacing the old one (cancelled; the new one's priorPrescription). 422 for a dose outside the protocol or an unresolved contraindication, 409 when the task is not approved, its order is held or its session has begun",
  })
  async changeDose(
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body(strictBody) body: ChangeDoseDto,
    @CurrentCaller() caller: Caller,
  ): Promise<Task> {
    return this.doses.change({
      taskId: checkId(id),
      seenVersion: seenVersion(ifMatch, body.versionId),
      caller,
      rate: body.rate,
      bolus: body.bolus,
      reason: body.reason,
    });
  }
}
