import { Injectable, Logger } from '@nestjs/common';
import type { Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { isSessionClosedInEhr } from '@kc/followups';
import { CompletedTaskEventsProducer } from '@kc/queue';
import { PollCursors, type ChangePoll } from './change-polls';
import { queueChangedSince } from './cursor-poll';

/** Its cursor's key in Redis. */
const CURSOR = 'sessions-closed-in-ehr';

/**
 * Polling fallback for infusion sessions an EHR closed by their Task's status alone (isSessionClosedInEhr): the Tasks
 * closed since the cursor, those of sessions this service still has open each queued for its job
 * (SessionsClosedInEhr). The service's own closings are closed in their business state too, so they are not queued.
 */
@Injectable()
export class SessionsClosedInEhrPoller implements ChangePoll {
  readonly name = 'sessionsClosedInEhr';
  readonly cursors = [CURSOR];
  private readonly logger = new Logger(SessionsClosedInEhrPoller.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    private readonly pollCursors: PollCursors,
  ) {}

  async poll(): Promise<{ queued: number }> {
    const queued = await queueChangedSince(
      await this.pollCursors.of(CURSOR),
      (from) =>
        this.fhir.searchAll<Task>('Task', {
          status: 'completed,cancelled,rejected,failed',
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      (id) => this.producer.enqueueSessionClosedInEhr(id),
      isSessionClosedInEhr,
    );
    if (queued) this.logger.log({ msg: 'poll queued sessions closed in the EHR', count: queued });
    return { queued };
  }
}
