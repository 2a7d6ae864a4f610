import { Module } from '@nestjs/common';
import { EventsController } from './events.controller';
import { FhirWebhookController } from './fhir-webhook.controller';
import { NotifiedJobs } from './notified-jobs';
import { PollTrigger } from './poll-trigger';

@Module({ controllers: [EventsController, FhirWebhookController], providers: [PollTrigger, NotifiedJobs] })
export class EventsModule {}
