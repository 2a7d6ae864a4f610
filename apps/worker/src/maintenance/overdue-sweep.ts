import { Injectable, Logger } from '@nestjs/common';
import type { Task } from '@medplum/fhirtypes';
import { FhirClient, FhirVersionConflictError } from '@kc/fhir';
import { BUSINESS_STATUS, SERVICE_CODE_SYSTEM, TASK_KEY_SYSTEM } from '@kc/protocols';

/**
 * Marks open Tasks whose due window has closed as overdue (businessStatus), keeping their status so the
 * clinician can still act on them. Writes with If-Match: a clinician's decision made meanwhile wins.
 */
@Injectable()
export class OverdueSweep {
  private readonly logger = new Logger(OverdueSweep.name);

  constructor(private readonly fhir: FhirClient) {}

  async sweep(now = new Date()): Promise<{ marked: number; checked: number }> {
    const open = await this.fhir.searchAll<Task>('Task', { status: 'requested,accepted', _count: 200 });
    const overdue = open.filter((task) => isOverdue(task, now));
    let marked = 0;
    for (const task of overdue) {
      const updated: Task = {
        ...task,
        businessStatus: {
          coding: [{ system: SERVICE_CODE_SYSTEM, code: BUSINESS_STATUS.overdue, display: 'Overdue' }],
        },
      };
      try {
        await this.fhir.update(updated, { ifMatch: task.meta?.versionId });
        marked++;
      } catch (err) {
        if (!(err instanceof FhirVersionConflictError)) throw err;
      }
    }
    if (marked) this.logger.log({ msg: 'marked overdue tasks', marked, checked: open.length });
    return { marked, checked: open.length };
  }
}

/**
 * Only this service's Tasks (its key identifier or its businessStatus codes): a shared FHIR server holds other
 * applications' Tasks, whose deadlines mean something else.
 */
export function isOverdue(task: Task, now: Date): boolean {
  const ours =
    task.identifier?.some((i) => i.system === TASK_KEY_SYSTEM) ||
    task.businessStatus?.coding?.some((c) => c.system === SERVICE_CODE_SYSTEM);
  if (!ours) return false;
  const end = task.restriction?.period?.end;
  const already = task.businessStatus?.coding?.some(
    (c) => c.system === SERVICE_CODE_SYSTEM && c.code === BUSINESS_STATUS.overdue,
  );
  return Boolean(end) && Date.parse(end!) < now.getTime() && !already;
}
