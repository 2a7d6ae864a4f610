import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { ProtocolCatalog } from '@kc/protocols';
import { ToDoIndex, WorklistIndex, type OwnerCount, type WorklistEntry } from '@kc/worklist-index';
import { parseWorklistQuery, type WorklistQuery } from './worklist-query';

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
 * Tasks awaiting a clinician's approval (the worklist), or approved and still to be done (the to-do list), soonest
 * due first, from their indexes (libs/worklist-index): Redis sorted sets kept by every write this service makes and
 * reconciled with the FHIR server, because Task has no search parameter for restriction.period. Every filter is
 * exact at any size; paging is by cursor, so a Task approved meanwhile does not shift the next page.
 */
@Injectable()
export class WorklistService {
  /**
   * The kinds of Task a list can be filtered by (Task.code of what the protocols generate): read from the catalog
   * once, not on every worklist request (it walks every protocol's actions).
   */
  readonly kindCodes: readonly string[];

  constructor(
    private readonly awaiting: WorklistIndex,
    private readonly toDoIndex: ToDoIndex,
    private readonly catalog: ProtocolCatalog,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {
    this.kindCodes = catalog.taskKinds().map((k) => k.code);
  }

  /** A worklist or to-do request's query (parseWorklistQuery): its kinds the protocols', its days the clinic's. */
  parse(query: Record<string, unknown>, me?: string): WorklistQuery {
    return parseWorklistQuery(query, this.kindCodes, me, this.config.clinicTimeZone);
  }

  worklist(query: WorklistQuery, now = new Date()): Promise<Worklist> {
    return this.page(this.awaiting, query, now);
  }

  toDo(query: WorklistQuery, now = new Date()): Promise<Worklist> {
    return this.page(this.toDoIndex, query, now);
  }

  /** Whose the to-do list's Tasks are, most first (UNASSIGNED: nobody's yet). */
  toDoOwners(): Promise<OwnerCount[]> {
    return this.toDoIndex.owners();
  }

  private async page(index: WorklistIndex, query: WorklistQuery, now: Date): Promise<Worklist> {
    const page = await index.query(
      {
        patient: query.patient,
        patients: query.patients,
        protocol: query.protocol ? this.canonicalOf(query.protocol) : undefined,
        kind: query.kind,
        owner: query.owner,
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
