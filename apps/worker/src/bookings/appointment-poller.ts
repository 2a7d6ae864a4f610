import { Injectable } from '@nestjs/common';
import type { Appointment } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { CompletedTaskEventsProducer } from '@kc/queue';
import { PollCursors } from '../maintenance/change-polls';
import { QueuingPoll } from '../maintenance/queuing-poll';

/** How far back an appointment's start may be and still be polled: today's, whatever the hour. */
const STILL_TO_COME_MS = 24 * 60 * 60 * 1000;

/**
 * Polling fallback for appointments booked in the clinic's scheduling system: the Appointments changed since the
 * cursor, each queued for its job to find the session it books or gives up (which writes nothing when that is done
 * already).
 */
@Injectable()
export class AppointmentPoller extends QueuingPoll<Appointment> {
  readonly name = 'appointments';
  protected readonly cursor = 'appointments';
  protected readonly queuedWhat = 'appointments';

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    pollCursors: PollCursors,
  ) {
    super(pollCursors);
  }

  protected changedSince(from: string): Promise<Appointment[]> {
    // Every status (a cancelled one gives up the time its session was booked at), but only those still to come: a
    // shared FHIR server holds every clinic's past appointments, which book no session.
    return this.fhir.searchAll<Appointment>('Appointment', {
      _lastUpdated: `ge${from}`,
      date: `ge${new Date(Date.now() - STILL_TO_COME_MS).toISOString()}`,
      _sort: '_lastUpdated',
      _count: 100,
    });
  }

  protected enqueue(id: string): Promise<unknown> {
    return this.producer.enqueueAppointment(id);
  }
}
