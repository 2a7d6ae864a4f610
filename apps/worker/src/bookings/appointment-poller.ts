import { Injectable, Logger } from '@nestjs/common';
import type { Appointment } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { CompletedTaskEventsProducer } from '@kc/queue';
import { PollCursors, type ChangePoll } from '../maintenance/change-polls';
import { queueChangedSince } from '../maintenance/cursor-poll';

/** How far back an appointment's start may be and still be polled: today's, whatever the hour. */
const STILL_TO_COME_MS = 24 * 60 * 60 * 1000;

/** Its cursor's key in Redis. */
const CURSOR = 'appointments';

/**
 * Polling fallback for appointments booked in the clinic's scheduling system: the Appointments changed since the
 * cursor, each queued for its job to find the session it books or gives up (which writes nothing when that is done
 * already).
 */
@Injectable()
export class AppointmentPoller implements ChangePoll {
  readonly name = 'appointments';
  readonly cursors = [CURSOR];
  private readonly logger = new Logger(AppointmentPoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    private readonly pollCursors: PollCursors,
  ) {}

  async poll(): Promise<{ queued: number }> {
    const queued = await queueChangedSince(
      await this.pollCursors.of(CURSOR),
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
    return { queued };
  }
}
