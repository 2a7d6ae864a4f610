import { Injectable, Logger } from '@nestjs/common';
import type { DetectedIssue } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { PatientRecordEventsProducer } from '@kc/queue';
import { plansClearedBy } from '@kc/protocols';
import { PollCursors, type ChangePoll } from './change-polls';
import { queueChangedSince } from './cursor-poll';

/** Its cursor's key in Redis. */
const CURSOR = 'cleared-issues';

/**
 * Polling fallback for contraindications resolved outside this service: the DetectedIssues changed since the cursor;
 * those that implicate a plan and no longer hold it back are queued for their job (PlanChanges.issueChanged), which
 * lifts the holds they placed. This service's own overrides are queued too and find nothing left to release.
 */
@Injectable()
export class ClearedIssuesPoller implements ChangePoll {
  readonly name = 'clearedIssues';
  readonly cursors = [CURSOR];
  private readonly logger = new Logger(ClearedIssuesPoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly records: PatientRecordEventsProducer,
    private readonly pollCursors: PollCursors,
  ) {}

  async poll(): Promise<{ queued: number }> {
    const queued = await queueChangedSince(
      await this.pollCursors.of(CURSOR),
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
    return { queued };
  }
}
