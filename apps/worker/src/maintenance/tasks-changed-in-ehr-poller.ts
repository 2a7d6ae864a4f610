import { Injectable, Logger } from '@nestjs/common';
import type { Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { isTaskChangedInEhr } from '@kc/followups';
import { CompletedTaskEventsProducer } from '@kc/queue';
import { CLOSED_BY_EHR, TO_BE_DONE } from '@kc/task-states';
import { PollCursors, type ChangePoll } from './change-polls';
import { queueChangedSince } from './cursor-poll';

/** Its cursor's key in Redis. */
const CURSOR = 'tasks-changed-in-ehr';

/**
 * Polling fallback for Tasks an EHR changed (isTaskChangedInEhr): the Tasks changed since the cursor, those this
 * service still has open that an EHR closed by their status, set to be done while awaiting approval, or moved to
 * another window, each queued for its job (TasksChangedInEhr). The service's own writes say the same in their business
 * state and their window as set, so they are not queued.
 */
@Injectable()
export class TasksChangedInEhrPoller implements ChangePoll {
  readonly name = 'tasksChangedInEhr';
  readonly cursors = [CURSOR];
  private readonly logger = new Logger(TasksChangedInEhrPoller.name);

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
          // Open ones too: a window moved (windowMovedOutside) on a Task awaiting approval or held.
          status: [...CLOSED_BY_EHR, ...TO_BE_DONE, 'draft', 'on-hold'].join(','),
          _lastUpdated: `ge${from}`,
          _sort: '_lastUpdated',
          _count: 100,
        }),
      (id, task) => this.producer.enqueueTaskChangedInEhr(id, task.meta?.versionId),
      isTaskChangedInEhr,
    );
    if (queued) this.logger.log({ msg: 'poll queued Tasks changed in the EHR', count: queued });
    return { queued };
  }
}
