import { Body, Controller, Headers, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { OperationOutcome, Task } from '@medplum/fhirtypes';
import { CurrentCaller, FhirScopes, Roles, type Caller } from '@kc/auth';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { badRequest, OutcomeException } from '@kc/common';
import { clinicInstant } from '@kc/protocols';
import { ApproveDto, BulkApproveDto, RejectDto, RescheduleDto } from './decision.dto';
import { checkId, seenVersion } from './seen-version';
import { TaskDecisionService } from './task-decision.service';
import { strictBody } from './validation';

/** Clinician decisions on generated tasks. Each needs the version reviewed; each leaves a Provenance. */
@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('tasks')
export class TaskDecisionsController {
  constructor(
    private readonly decisions: TaskDecisionService,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  @FhirScopes({ resourceType: 'Task', interaction: 'u' }, { resourceType: 'MedicationRequest', interaction: 'c' })
  @Post(':id/\\$approve')
  @HttpCode(200)
  @ApiOperation({
    summary:
      "Approve a generated task (status ready, businessStatus approved); a proposed MedicationRequest/ServiceRequest becomes an active order signed by the caller (an infusion at `rate` per kg if given, within its protocol's range, times the latest body weight). 422 while a contraindication is unresolved, for a rate outside the range, or for a task due outside its protocol window without `outsideWindowReason`; 409 from a closed state",
  })
  async approve(
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body(strictBody) body: ApproveDto,
    @CurrentCaller() caller: Caller,
  ): Promise<Task> {
    const owner: Task['owner'] = body.owner ? { reference: body.owner } : undefined;
    return this.decisions.approve({
      taskId: checkId(id),
      seenVersion: seenVersion(ifMatch, body.versionId),
      caller,
      owner,
      rate: body.rate,
      bolus: body.bolus,
      alongside: body.alongside,
      onOrder: body.onOrder,
      outsideWindowReason: body.outsideWindowReason,
    });
  }

  @FhirScopes({ resourceType: 'Task', interaction: 'u' })
  @Post(':id/\\$reject')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Reject a generated task with a reason; its proposed request (an approved one: its orders) is cancelled with that reason. 409 once the pump has begun the session',
  })
  async reject(
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body(strictBody) body: RejectDto,
    @CurrentCaller() caller: Caller,
  ): Promise<Task> {
    return this.decisions.reject({
      taskId: checkId(id),
      seenVersion: seenVersion(ifMatch, body.versionId),
      caller,
      reason: body.reason,
    });
  }

  @FhirScopes({ resourceType: 'Task', interaction: 'u' })
  @Post(':id/\\$reschedule')
  @HttpCode(200)
  @ApiOperation({
    summary: "Approve for a new due window within the protocol's window (422 with the allowed range otherwise)",
  })
  async reschedule(
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body(strictBody) body: RescheduleDto,
    @CurrentCaller() caller: Caller,
  ): Promise<Task> {
    // A day given alone is the clinic's (from its midnight), as the page's dates are.
    const instant = (value: string, name: string) => {
      const at = clinicInstant(value, this.config.clinicTimeZone);
      if (!at) throw badRequest(`${name} must be a date (YYYY-MM-DD) or dateTime`);
      return at.toISOString();
    };
    const window = { start: instant(body.start, 'start'), end: instant(body.end, 'end') };
    return this.decisions.reschedule({
      taskId: checkId(id),
      seenVersion: seenVersion(ifMatch, body.versionId),
      caller,
      window,
      rate: body.rate,
      bolus: body.bolus,
      alongside: body.alongside,
    });
  }

  @FhirScopes({ resourceType: 'Task', interaction: 'u' }, { resourceType: 'MedicationRequest', interaction: 'c' })
  @Post('\\$bulk-approve')
  @HttpCode(200)
  @ApiOperation({ summary: 'Approve up to 100 tasks; the result says, per task, whether it was approved and why not' })
  async bulkApprove(@Body(strictBody) body: BulkApproveDto, @CurrentCaller() caller: Caller) {
    const owner: Task['owner'] = body.owner ? { reference: body.owner } : undefined;
    // All at once, so their reads and transactions share requests (DecisionWriter); each is still its own
    // all-or-nothing decision, and a refusal of one (a conflict, a contraindication) does not stop the others.
    const settled = await Promise.allSettled(
      body.tasks.map((item) => this.decisions.approve({ taskId: item.id, seenVersion: item.versionId, caller, owner })),
    );
    // Anything but a refusal (the FHIR server unreachable) fails the request; a retry finds what landed (Provenance).
    const failure = settled.find((s) => s.status === 'rejected' && !(s.reason instanceof OutcomeException));
    if (failure) throw (failure as PromiseRejectedResult).reason;
    const results = settled.map((s, i) => {
      const id = body.tasks[i].id;
      if (s.status === 'fulfilled') return { id, result: 'approved', versionId: s.value.meta?.versionId };
      const err = s.reason as OutcomeException;
      const [issue, ...related] = (err.getResponse() as OperationOutcome).issue ?? [];
      // The refusal's issue code and expression, as $approve's: a `duplicate` names the EHR's orders (and each in
      // words, `orders`), for the caller to approve that task alone with `onOrder` or `alongside`.
      const orders = related
        .filter((r) => r.code === 'duplicate' && r.expression?.length)
        .map((r) => ({ reference: r.expression![0], text: r.details?.text }));
      return {
        id,
        result: 'refused',
        status: err.getStatus(),
        message: issue?.details?.text,
        code: issue?.code,
        ...(issue?.expression?.length ? { expression: issue.expression } : {}),
        ...(orders.length ? { orders } : {}),
      };
    });
    return { approved: results.filter((r) => r.result === 'approved').length, results };
  }
}
