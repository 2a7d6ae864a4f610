import { Body, Controller, HttpCode, Post, ValidationPipe } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Roles } from '@kc/auth';
import { InfusionEventsProducer } from '@kc/queue';
import { InfusionCompletedDto } from './infusion-completed.dto';

/** Events sent by an integration directly (no FHIR subscription needed). */
@ApiTags('events')
@ApiBearerAuth()
@Controller('events')
export class EventsController {
  constructor(private readonly producer: InfusionEventsProducer) {}

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
}
