import { Injectable } from '@nestjs/common';
import type { DetectedIssue } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { PatientRecordEventsProducer } from '@kc/queue';
import { plansClearedBy } from '@kc/protocols';
import { PollCursors } from './change-polls';
import { QueuingPoll } from './queuing-poll';

/**
 * Polling fallback for contraindications resolved outside this service: the DetectedIssues changed since the cursor;
 * those that implicate a plan and no longer hold it back are queued for their job (PlanChanges.issueChanged), which
 * lifts the holds they placed. This service's own overrides are queued too and find nothing left to release.
 */
@Injectable()
export class ClearedIssuesPoller extends QueuingPoll<DetectedIssue> {
  readonly name = 'clearedIssues';
  protected readonly cursor = 'cleared-issues';
  protected readonly queuedWhat = 'contraindications resolved outside';

  constructor(
    private readonly fhir: FhirClient,
    private readonly records: PatientRecordEventsProducer,
    pollCursors: PollCursors,
  ) {
    super(pollCursors);
  }

  protected changedSince(from: string): Promise<DetectedIssue[]> {
    return this.fhir.searchAll<DetectedIssue>('DetectedIssue', {
      _lastUpdated: `ge${from}`,
      _sort: '_lastUpdated',
      _count: 100,
    });
  }

  protected enqueue(id: string): Promise<unknown> {
    return this.records.enqueue(`DetectedIssue/${id}`);
  }

  protected override keep(issue: DetectedIssue): boolean {
    return plansClearedBy(issue).length > 0;
  }
}
