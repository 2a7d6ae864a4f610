import { Module } from '@nestjs/common';
import { EventsController } from './events.controller';
import { FhirWebhookController } from './fhir-webhook.controller';
import { PollTrigger } from './poll-trigger';

@Module({ controllers: [EventsController, FhirWebhookController], providers: [PollTrigger] })
export class EventsModule {}
