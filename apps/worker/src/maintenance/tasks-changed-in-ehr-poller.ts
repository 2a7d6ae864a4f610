import { Injectable } from '@nestjs/common';
import type { Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { isTaskChangedInEhr } from '@kc/followups';
import { CompletedTaskEventsProducer } from '@kc/queue';
import { CLOSED_BY_EHR, TO_BE_DONE } from '@kc/task-states';
import { PollCursors } from './change-polls';
import { QueuingPoll } from './queuing-poll';

/**
 * Polling fallback for Tasks an EHR changed (isTaskChangedInEhr): the Tasks changed since the cursor, those this
 * service still has open that an EHR closed by their status, set to be done while awaiting approval, or moved to
 * another window, each queued for its job (TasksChangedInEhr). The service's own writes say the same in their business
 * state and their window as set, so they are not queued.
 */
@Injectable()
export class TasksChangedInEhrPoller extends QueuingPoll<Task> {
  readonly name = 'tasksChangedInEhr';
  protected readonly cursor = 'tasks-changed-in-ehr';
  protected readonly queuedWhat = 'Tasks changed in the EHR';

  constructor(
    private readonly fhir: FhirClient,
    private readonly producer: CompletedTaskEventsProducer,
    pollCursors: PollCursors,
  ) {
    super(pollCursors);
  }

  protected changedSince(from: string): Promise<Task[]> {
    return this.fhir.searchAll<Task>('Task', {
      // Open ones too: a window moved (windowMovedOutside) on a Task awaiting approval or held.
      status: [...CLOSED_BY_EHR, ...TO_BE_DONE, 'draft', 'on-hold'].join(','),
      _lastUpdated: `ge${from}`,
      _sort: '_lastUpdated',
      _count: 100,
    });
  }

  protected enqueue(id: string, task: Task): Promise<unknown> {
    return this.producer.enqueueTaskChangedInEhr(id, task.meta?.versionId);
  }

  protected override keep(task: Task): boolean {
    return isTaskChangedInEhr(task);
  }
}
