import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { MedicationAdministration } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { CompletedTaskEventsProducer, QUEUES } from '@kc/queue';
import { initCursor, pollCursor, queueChangedSince, type StoredCursor } from '../maintenance/cursor-poll';

/**
 * Polling fallback for administrations recorded at the pump or in the eMAR (a server that cannot notify, such as the
 * embedded one, or a notification lost): those changed since the cursor, on the Procedure poll's schedule, each queued
 * for its job (LateAdministrations), which proposes the sessions awaiting approval after its infusion again at the
 * rate it records. One recorded before its infusion's follow-ups changes nothing there.
 */
@Injectable()
export class AdministrationsPoller {
  private readonly logger = new Logger(AdministrationsPoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private cursor(): Promise<StoredCursor> {
    return pollCursor(this.queue, this.config, 'administrations');
  }

  async initCursor(): Promise<void> {
    await initCursor(await this.cursor());
  }

  async poll(): Promise<{ administrations: number }> {
    const queued = await queueChangedSince(
      await this.cursor(),
      (from) =>
        // What records a rate given (or takes one back: entered in error), not what was only planned or not done.
        this.fhir.searchAll<MedicationAdministration>('MedicationAdministration', {
          status: 'completed,in-progress,entered-in-error',
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      (id) => this.producer.enqueueAdministration(id),
    );
    if (queued) this.logger.log({ msg: 'poll queued administrations', count: queued });
    return { administrations: queued };
  }
}
