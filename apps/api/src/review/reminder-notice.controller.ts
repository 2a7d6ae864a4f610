import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { CarePlan, Task } from '@medplum/fhirtypes';
import { FhirScopes, Roles } from '@kc/auth';
import { badRequest, notFound } from '@kc/common';
import { FhirClient, includedOf, matchesOf } from '@kc/fhir';
import { carePlanReferenceOf } from '@kc/followups';
import { checkId } from './seen-version';
import { TaskReminders } from './task-reminders';

/**
 * Before a clinician reschedules: whether the dates they picked would send a reminder with less notice than it needs
 * (the fasting one, for a session booked within hours). A preview; it writes nothing. The page's reschedule dialog
 * asks it as the dates change.
 */
@ApiTags('review')
@ApiBearerAuth()
@Roles('clinician')
@Controller('tasks')
export class ReminderNoticeController {
  constructor(
    private readonly fhir: FhirClient,
    private readonly reminders: TaskReminders,
  ) {}

  @FhirScopes({ resourceType: 'CommunicationRequest', interaction: 'r' })
  @Get(':id/reminder-notice')
  @ApiOperation({ summary: 'Would rescheduling this Task to start..end send a reminder short of the notice it needs?' })
  @ApiQuery({ name: 'start', example: '2027-02-20T00:00:00Z' })
  @ApiQuery({ name: 'end', example: '2027-02-22T23:59:59Z' })
  async notice(@Param('id') id: string, @Query() query: Record<string, unknown>): Promise<{ notice?: string }> {
    const { start, end } = query;
    if (typeof start !== 'string' || typeof end !== 'string' || !isInstant(start) || !isInstant(end))
      throw badRequest('start and end must be date-times, e.g. 2027-02-20T09:00:00Z');
    if (Date.parse(start) > Date.parse(end)) throw badRequest('start must not be after end');
    // The Task with its CarePlan (the protocol, hence the reminder rules), in one request.
    const found = await this.fhir.search<Task | CarePlan>('Task', { _id: checkId(id), _include: 'Task:based-on' });
    const task = matchesOf<Task>(found).find((t) => t.resourceType === 'Task');
    if (!task) throw notFound(`Task/${id} not found`);
    const carePlan = includedOf<CarePlan>(found).find((r) => `CarePlan/${r.id}` === carePlanReferenceOf(task));
    const notice = await this.reminders.noticeOf(task, carePlan, 'Rescheduling to these dates', {
      start: new Date(start).toISOString(),
      end: new Date(end).toISOString(),
    });
    return notice ? { notice } : {};
  }
}

function isInstant(value: string): boolean {
  return (
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) &&
    !Number.isNaN(Date.parse(value))
  );
}
