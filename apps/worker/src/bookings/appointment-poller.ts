import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { Appointment } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { CompletedTaskEventsProducer, QUEUES } from '@kc/queue';
import { initCursor, pollCursor, queueChangedSince, type StoredCursor } from '../maintenance/cursor-poll';

/**
 * Polling fallback for appointments booked in the clinic's scheduling system (a server that cannot notify, or a
 * notification lost): the Appointments changed since the cursor, on the Procedure poll's schedule, each queued for
 * its job to find the session it books or gives up (which writes nothing when that is done already).
 */
/** How far back an appointment's start may be and still be polled: today's, whatever the hour. */
const STILL_TO_COME_MS = 24 * 60 * 60 * 1000;

@Injectable()
export class AppointmentPoller {
  private readonly logger = new Logger(AppointmentPoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private cursor(): Promise<StoredCursor> {
    return pollCursor(this.queue, this.config, 'appointments');
  }

  async initCursor(): Promise<void> {
    await initCursor(await this.cursor());
  }

  async poll(): Promise<{ appointments: number }> {
    const queued = await queueChangedSince(
      await this.cursor(),
      (from) =>
        // Every status (a cancelled one gives up the time its session was booked at), but only those still to come:
        // a shared FHIR server holds every clinic's past appointments, which book no session.
        this.fhir.searchAll<Appointment>('Appointment', {
          _lastUpdated: `ge${from}`,
          date: `ge${new Date(Date.now() - STILL_TO_COME_MS).toISOString()}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      (id) => this.producer.enqueueAppointment(id),
    );
    if (queued) this.logger.log({ msg: 'poll queued appointments', count: queued });
    return { appointments: queued };
  }
}
