import { Injectable } from '@nestjs/common';
import type { CarePlan, Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { ProtocolCatalog } from '@kc/protocols';
import { hasEnded, stateOf } from '@kc/task-states';
import { protocolWindow } from './task-decisions';
import type { WorklistQuery } from './worklist-query';

/** How many open tasks one worklist read considers at most; a clinic's open queue is far below this. */
const MAX_OPEN_TASKS = 2000;

export interface WorklistItem {
  id: string;
  versionId?: string;
  patient?: string;
  carePlan?: string;
  protocol?: string;
  kind?: string;
  description?: string;
  due?: { start?: string; end?: string };
  allowedWindow?: { start?: string; end?: string };
  businessStatus?: string;
  overdue: boolean;
}

export interface Worklist {
  total: number;
  page: number;
  count: number;
  items: WorklistItem[];
}

/**
 * Tasks awaiting a clinician's approval, soonest due first. Status and patient are filtered by the FHIR server;
 * protocol and due dates in memory, because Task has no search parameter for restriction.period and the
 * protocol sits on the CarePlan.
 */
@Injectable()
export class WorklistService {
  constructor(
    private readonly fhir: FhirClient,
    private readonly catalog: ProtocolCatalog,
  ) {}

  async worklist(query: WorklistQuery, now = new Date()): Promise<Worklist> {
    // Awaiting a decision: status draft (libs/task-states).
    const search: Record<string, string> = { status: 'draft', _count: '200' };
    if (query.patient) search.patient = `Patient/${query.patient}`;
    const tasks = (await this.fhir.searchAll<Task>('Task', search)).slice(0, MAX_OPEN_TASKS);
    const protocols = await this.protocolsOf(tasks);
    const wantedProtocol = query.protocol ? this.canonicalOf(query.protocol) : undefined;
    const items = tasks
      .map((task) => toItem(task, protocols, now))
      .filter(
        (item) =>
          !wantedProtocol || item.protocol === wantedProtocol || item.protocol?.split('|')[0] === wantedProtocol,
      )
      .filter(
        (item) =>
          !query.dueBefore ||
          (item.due?.start !== undefined && Date.parse(item.due.start) <= query.dueBefore.getTime()),
      )
      .filter(
        (item) =>
          !query.dueAfter || (item.due?.end !== undefined && Date.parse(item.due.end) >= query.dueAfter.getTime()),
      )
      .filter((item) => query.overdue === undefined || item.overdue === query.overdue)
      .sort(byDueDate);
    const start = (query.page - 1) * query.count;
    return {
      total: items.length,
      page: query.page,
      count: query.count,
      items: items.slice(start, start + query.count),
    };
  }

  private canonicalOf(protocol: string): string {
    return this.catalog.findPlanDefinition(protocol)?.url ?? protocol;
  }

  /** CarePlan id -> its PlanDefinition canonical, in one search. */
  private async protocolsOf(tasks: Task[]): Promise<Map<string, string>> {
    const ids = [
      ...new Set(
        tasks
          .flatMap((t) => t.basedOn ?? [])
          .map((b) => /^CarePlan\/(.+)$/.exec(b.reference ?? '')?.[1])
          .filter((id): id is string => Boolean(id)),
      ),
    ];
    const protocols = new Map<string, string>();
    for (let i = 0; i < ids.length; i += 100) {
      const plans = await this.fhir.searchAll<CarePlan>('CarePlan', {
        _id: ids.slice(i, i + 100).join(','),
        _count: 100,
      });
      for (const plan of plans)
        if (plan.instantiatesCanonical?.[0]) protocols.set(plan.id!, plan.instantiatesCanonical[0]);
    }
    return protocols;
  }
}

function toItem(task: Task, protocols: Map<string, string>, now: Date): WorklistItem {
  const carePlan = task.basedOn?.find((b) => b.reference?.startsWith('CarePlan/'))?.reference;
  return {
    id: task.id!,
    versionId: task.meta?.versionId,
    patient: task.for?.reference,
    carePlan,
    protocol: carePlan ? protocols.get(carePlan.slice('CarePlan/'.length)) : undefined,
    kind: task.code?.coding?.[0]?.code,
    description: task.description,
    due: task.restriction?.period,
    allowedWindow: protocolWindow(task),
    businessStatus: task.businessStatus?.coding?.[0]?.code,
    overdue: stateOf(task) === 'overdue' || hasEnded(task, now),
  };
}

function byDueDate(a: WorklistItem, b: WorklistItem): number {
  const key = (item: WorklistItem, field: 'start' | 'end') =>
    item.due?.[field] ? Date.parse(item.due[field]) : Number.MAX_SAFE_INTEGER;
  return key(a, 'start') - key(b, 'start') || key(a, 'end') - key(b, 'end') || a.id.localeCompare(b.id);
}
