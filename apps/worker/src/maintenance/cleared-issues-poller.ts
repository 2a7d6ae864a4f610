import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { DetectedIssue } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { PatientRecordEventsProducer, QUEUES } from '@kc/queue';
import { plansClearedBy } from '@kc/protocols';
import { initCursor, pollCursor, queueChangedSince, type StoredCursor } from './cursor-poll';

/**
 * Polling fallback for contraindications resolved outside this service (a server that cannot notify, such as the
 * embedded one, or a notification lost): the DetectedIssues changed since the cursor, on the Procedure poll's
 * schedule; those that implicate a plan and no longer hold it back are queued for their job (PlanChanges.issueChanged),
 * which lifts the holds they placed. This service's own overrides are queued too and find nothing left to release.
 */
@Injectable()
export class ClearedIssuesPoller {
  private readonly logger = new Logger(ClearedIssuesPoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly records: PatientRecordEventsProducer,
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private cursor(): Promise<StoredCursor> {
    return pollCursor(this.queue, this.config, 'cleared-issues');
  }

  async initCursor(): Promise<void> {
    await initCursor(await this.cursor());
  }

  async poll(): Promise<{ clearedIssues: number }> {
    const queued = await queueChangedSince(
      await this.cursor(),
      (from) =>
        this.fhir.searchAll<DetectedIssue>('DetectedIssue', {
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      (id) => this.records.enqueue(`DetectedIssue/${id}`),
      (issue) => plansClearedBy(issue).length > 0,
    );
    if (queued) this.logger.log({ msg: 'poll queued contraindications resolved outside', count: queued });
    return { clearedIssues: queued };
  }
}
