import { Injectable, Logger } from '@nestjs/common';
import type { Task } from '@medplum/fhirtypes';
import { FhirClient, isStaleWrite } from '@kc/fhir';
import { TASK_KEY_SYSTEM } from '@kc/protocols';
import { canTransition, hasEnded, stateOf, transition } from '@kc/task-states';

/**
 * Marks open Tasks whose due window has closed as overdue (businessStatus), keeping their status (draft or
 * ready) so the clinician can still act on them. Writes with If-Match: a clinician's decision made meanwhile wins.
 */
@Injectable()
export class OverdueSweep {
  private readonly logger = new Logger(OverdueSweep.name);

  constructor(private readonly fhir: FhirClient) {}

  async sweep(now = new Date()): Promise<{ marked: number; checked: number }> {
    // By `_lastUpdated`: paged by cursor on Medplum's server, whose `_offset` stops at 10,000 (search-paging.ts).
    const open = await this.fhir.searchAll<Task>('Task', { status: 'draft,ready', _sort: '_lastUpdated', _count: 200 });
    const overdue = open.filter((task) => shouldMarkOverdue(task, now));
    let marked = 0;
    for (const task of overdue) {
      try {
        await this.fhir.update(transition(task, { event: 'mark-overdue', now }), { ifMatch: task.meta?.versionId });
        marked++;
      } catch (err) {
        if (!isStaleWrite(err)) throw err;
      }
    }
    if (marked) this.logger.log({ msg: 'marked overdue tasks', marked, checked: open.length });
    return { marked, checked: open.length };
  }
}

/**
 * Only this service's Tasks (its key identifier or its businessStatus codes): a shared FHIR server holds other applications' Tasks, whose
 * deadlines mean something else. Open, window ended, not yet marked.
 */
export function shouldMarkOverdue(task: Task, now: Date): boolean {
  const ours = task.identifier?.some((i) => i.system === TASK_KEY_SYSTEM) || stateOf(task) !== undefined;
  return Boolean(ours) && hasEnded(task, now) && canTransition(task, 'mark-overdue');
}
