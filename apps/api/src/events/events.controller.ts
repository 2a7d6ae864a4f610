import { Body, Controller, HttpCode, Post, ValidationPipe } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { FhirScopes, Roles } from '@kc/auth';
import { InfusionEventsProducer, ScoreEventsProducer } from '@kc/queue';
import { InfusionCompletedDto, ScoreRecordedDto } from './infusion-completed.dto';

/** Events sent by an integration directly (no FHIR subscription needed). */
@ApiTags('events')
@ApiBearerAuth()
@Controller('events')
export class EventsController {
  constructor(
    private readonly producer: InfusionEventsProducer,
    private readonly scores: ScoreEventsProducer,
  ) {}

  @FhirScopes({ resourceType: 'Task', interaction: 'c' })
  @Post('infusion-completed')
  @HttpCode(202)
  @Roles('integration')
  @ApiOperation({ summary: 'An infusion was completed: generate its follow-up tasks (idempotent per Procedure)' })
  async infusionCompleted(
    @Body(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true })) body: InfusionCompletedDto,
  ) {
    const { jobId } = await this.producer.enqueue(body.procedure.split('/')[1], 'api');
    return { jobId, status: 'queued' };
  }

  @FhirScopes({ resourceType: 'Task', interaction: 'u' })
  @Post('score-recorded')
  @HttpCode(202)
  @Roles('integration')
  @ApiOperation({
    summary: "A score was recorded: re-propose the patient's boosters awaiting approval earlier or later (idempotent)",
  })
  async scoreRecorded(
    @Body(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true })) body: ScoreRecordedDto,
  ) {
    const { jobId } = await this.scores.enqueue(body.observation.split('/')[1], 'api');
    return { jobId, status: 'queued' };
  }
}
