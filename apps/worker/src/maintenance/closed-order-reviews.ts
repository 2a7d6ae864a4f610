import { Inject, Injectable, Logger } from '@nestjs/common';
import type {
  Bundle,
  CommunicationRequest,
  MedicationAdministration,
  MedicationRequest,
  Provenance,
  Task,
} from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, isStaleWrite, includedOf, matchesOf, searchEach, updateEntry } from '@kc/fhir';
import { approvedSessions, carePlanReferenceOf, sessionsToReturnForReview, type ReturnForReview } from '@kc/followups';
import { administrationsIn, sessionOrdersOf } from '@kc/nest-core';
import {
  changeProvenance,
  isOpenOrder,
  ordersApprovedOn,
  replacementOrdersParams,
  sessionIdsOfOrder,
  THIS_SERVICE,
} from '@kc/task-states';
import { OpenTasksReader, type OpenTasks } from './open-tasks';

/**
 * Returns to a clinician the approved infusion sessions whose order the EHR closed with nothing in its place
 * (sessionsToReturnForReview): the Task back to awaiting approval with why, its reminders not sent revoked and a
 * Provenance naming the service, in one transaction with If-Match (a decision made meanwhile wins; the next look
 * judges it again). Runs for one order when the FHIR server notifies its change or the poll finds it (after
 * ORDER_CHANGE_GRACE_MS), and over every approved session with the overdue sweep (orders closed longer ago than that).
 */
@Injectable()
export class ClosedOrderReviews {
  private readonly logger = new Logger(ClosedOrderReviews.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly reader: OpenTasksReader,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Every approved session of a read already made (the overdue sweep's). */
  sweep(open: OpenTasks, now = new Date()): Promise<{ returned: number }> {
    const closedBefore = new Date(now.getTime() - this.config.orderChangeGraceMs);
    return this.review([...open.approved, ...open.held], now, closedBefore);
  }

  /**
   * The sessions of one closed order (notified or polled, its grace waited out by the job's delay): the one whose
   * approval wrote it, or those approved on it when it is the EHR's (`onOrder`: the Tasks naming it, read with it).
   */
  async forOrder(orderId: string, now = new Date()): Promise<{ returned: number }> {
    const found = await this.fhir.search<MedicationRequest | Task>('MedicationRequest', {
      _id: orderId,
      _revinclude: 'Task:based-on',
    });
    return this.forOrderFound(orderId, found, now);
  }

  /** forOrder on a search already made: the order by `_id`, with `_revinclude=Task:based-on`. */
  async forOrderFound(orderId: string, found: Bundle, now = new Date()): Promise<{ returned: number }> {
    const [order] = matchesOf<MedicationRequest>(found);
    if (!order) return this.forDeletedOrder(orderId, now);
    if (isOpenOrder(order)) return { returned: 0 };
    const taskIds = sessionIdsOfOrder(order, includedOf<Task>(found, 'Task'));
    if (!taskIds.length) return { returned: 0 };
    const open = await this.reader.read({ _id: taskIds.join(',') });
    return this.review([...open.approved, ...open.held], now);
  }

  /**
   * An order deleted on the FHIR server (its deletion notified): judged as cancelled there, from its last version, for
   * the sessions it was of (the Tasks naming it still do). Gone without a trace, or never an order of a session:
   * nothing to do.
   */
  private async forDeletedOrder(orderId: string, now: Date): Promise<{ returned: number }> {
    const gone = await this.asCancelledIfDeleted(orderId);
    if (!gone) return { returned: 0 };
    const naming = await this.fhir.searchAll<Task>('Task', { 'based-on': `MedicationRequest/${orderId}` });
    const taskIds = sessionIdsOfOrder(gone, naming);
    if (!taskIds.length) return { returned: 0 };
    const open = await this.reader.read({ _id: taskIds.join(',') });
    return this.review([...open.approved, ...open.held], now, undefined, gone);
  }

  /** `gone`: an order deleted on the server, which no search finds any more, counted among its sessions' orders. */
  private async review(
    tasks: Task[],
    now: Date,
    closedBefore?: Date,
    gone?: MedicationRequest,
  ): Promise<{ returned: number }> {
    const sessions = approvedSessions(tasks);
    if (!sessions.length) return { returned: 0 };
    const { bySession: written, administrations } = await sessionOrdersOf(this.fhir, sessions, {
      administrations: true,
    });
    const orderless = sessions.filter((t) => !(written.get(t.id!) ?? []).length);
    const deleted = gone ? [gone] : await this.deletedOrdersOf(orderless);
    for (const order of deleted)
      for (const id of sessionIdsOfOrder(order, sessions)) written.set(id, [...(written.get(id) ?? []), order]);
    // Only sessions with no order open written here can have lost theirs: few, so their patients' reads are small.
    const closed = sessions.filter((t) => (written.get(t.id!) ?? []).length && !written.get(t.id!)!.some(isOpenOrder));
    if (!closed.length) return { returned: 0 };
    const around = await this.aroundClosed(
      closed,
      closed.flatMap((t) => written.get(t.id!)!),
    );
    const returns = sessionsToReturnForReview({
      tasks: closed,
      written,
      patientOrders: around.patientOrders,
      administrations: [...administrations, ...around.administrations],
      reminders: around.reminders,
      now,
      closedBefore,
    });
    let returned = 0;
    for (const r of returns) if (await this.write(r, now)) returned++;
    if (returned) this.logger.log({ msg: 'returned sessions whose order was closed in the EHR', returned });
    return { returned };
  }

  /**
   * The orders approved sessions with no order left to find were approved with or on, deleted on the FHIR server with
   * the deletion's notification lost (a restart, say): before, such a session stayed approved with nothing to give.
   * Named by the sessions' Provenances (an approval's targets its order) and Tasks (`basedOn`, an EHR's order), each
   * read as it was last (instance history). Few: only sessions with no order at all.
   */
  private async deletedOrdersOf(orderless: Task[]): Promise<MedicationRequest[]> {
    if (!orderless.length) return [];
    const provenances = await this.fhir.searchAll<Provenance>('Provenance', {
      target: orderless.map((t) => `Task/${t.id}`).join(','),
    });
    const proposals = new Set(orderless.map((t) => t.focus?.reference));
    const named = unique([
      ...provenances.flatMap((p) => p.target.map((t) => t.reference?.replace(/\/_history\/.*$/, ''))),
      ...orderless.flatMap(ordersApprovedOn),
    ]).filter((r) => r.startsWith('MedicationRequest/') && !proposals.has(r));
    const gone = await Promise.all(named.map((r) => this.asCancelledIfDeleted(r.split('/')[1])));
    return gone.filter((o): o is MedicationRequest => Boolean(o));
  }

  /** An order deleted on the FHIR server, as its last version cancelled there; undefined when it is not deleted. */
  private async asCancelledIfDeleted(orderId: string): Promise<MedicationRequest | undefined> {
    const last = await this.fhir.readEvenIfDeleted<MedicationRequest>('MedicationRequest', orderId);
    if (!last?.deleted) return undefined;
    return { ...last.resource, status: 'cancelled', statusReason: { text: 'deleted on the FHIR server' } };
  }

  /**
   * For sessions whose orders are all closed: their patients' orders written since (the EHR's replacements, at any
   * depth, with what the pump recorded of them) and their plans' active reminders. One batch.
   */
  private async aroundClosed(
    sessions: Task[],
    closedOrders: MedicationRequest[],
  ): Promise<{
    patientOrders: MedicationRequest[];
    administrations: MedicationAdministration[];
    reminders: CommunicationRequest[];
  }> {
    const patients = unique(sessions.map((t) => t.for?.reference));
    const plans = unique(sessions.map(carePlanReferenceOf));
    const found = await searchEach(this.fhir, [
      {
        name: 'orders',
        resourceType: 'MedicationRequest',
        params: {
          ...replacementOrdersParams(patients, closedOrders),
          _revinclude: 'MedicationAdministration:request',
        },
        everyMatch: true,
      },
      ...(plans.length
        ? [
            {
              name: 'reminders',
              resourceType: 'CommunicationRequest',
              params: { 'based-on': plans.join(','), status: 'active', _count: 200 },
              everyMatch: true,
            },
          ]
        : []),
    ]);
    return {
      patientOrders: matchesOf<MedicationRequest>(found.orders),
      administrations: administrationsIn(found.orders),
      reminders: matchesOf<CommunicationRequest>(found.reminders),
    };
  }

  private async write(r: ReturnForReview, now: Date): Promise<boolean> {
    const writes = [
      { resource: r.returned, read: r.task },
      ...r.reminders.map((m) => ({ resource: m.revoked, read: m.read })),
    ];
    // Who returned it and why, in the same transaction: the service, on the EHR's closing of the order.
    const provenance = changeProvenance({
      targets: writes.map(({ resource }) => ({ reference: `${resource.resourceType}/${resource.id}` })),
      revisionOf: { reference: `Task/${r.task.id}/_history/${r.task.meta!.versionId}` },
      who: THIS_SERVICE,
      activity: 'return for review',
      now,
      reason: r.returned.statusReason?.text,
    });
    provenance.entity = [
      ...(provenance.entity ?? []),
      // The order the EHR closed, as it was then: what the decision rests on.
      {
        role: 'source',
        what: { reference: `MedicationRequest/${r.closedOrder.id}/_history/${r.closedOrder.meta?.versionId}` },
      },
    ];
    try {
      await this.fhir.transaction([
        ...writes.map(({ resource, read }) => updateEntry(resource, read.meta!.versionId)),
        { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
      ]);
      return true;
    } catch (err) {
      if (isStaleWrite(err)) return false;
      throw err;
    }
  }
}

function unique(values: (string | undefined)[]): string[] {
  return [...new Set(values.filter((v): v is string => Boolean(v)))];
}
