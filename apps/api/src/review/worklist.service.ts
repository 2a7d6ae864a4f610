import { Injectable } from '@nestjs/common';
import { ProtocolCatalog } from '@kc/protocols';
import { WorklistIndex, type WorklistEntry } from '@kc/worklist-index';
import type { WorklistQuery } from './worklist-query';

export interface WorklistItem extends WorklistEntry {
  overdue: boolean;
}

export interface Worklist {
  total: number;
  count: number;
  items: WorklistItem[];
  /** Cursor of the next page (the last item's place in the order), when there is one. */
  cursor?: string;
}

/**
 * Tasks awaiting a clinician's approval, soonest due first, from the worklist index (libs/worklist-index):
 * Redis sorted sets kept by every write this service makes and reconciled with the FHIR server, because Task
 * has no search parameter for restriction.period. Every filter is exact at any size; paging is by cursor, so
 * a Task approved meanwhile does not shift the next page.
 */
@Injectable()
export class WorklistService {
  constructor(
    private readonly index: WorklistIndex,
    private readonly catalog: ProtocolCatalog,
  ) {}

  async worklist(query: WorklistQuery, now = new Date()): Promise<Worklist> {
    const page = await this.index.query(
      {
        patient: query.patient,
        protocol: query.protocol ? this.canonicalOf(query.protocol) : undefined,
        dueBefore: query.dueBefore,
        dueAfter: query.dueAfter,
        overdue: query.overdue,
        count: query.count,
        after: query.after,
      },
      now,
    );
    return { total: page.total, count: query.count, items: page.items, cursor: page.next };
  }

  private canonicalOf(protocol: string): string {
    return this.catalog.findPlanDefinition(protocol)?.url ?? protocol;
  }
}
