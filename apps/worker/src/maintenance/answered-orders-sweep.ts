import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { BundleEntry, MedicationRequest, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, includedOf, isStaleWrite, matchesOf, updateEntry } from '@kc/fhir';
import { isTaskClosedInEhr } from '@kc/followups';
import { QUEUES } from '@kc/queue';
import {
  AUTHORISABLE_TYPES,
  changeProvenance,
  CLOSED_BY_EHR,
  isClosedByStatus,
  isOpenOrder,
  ORDER_KEY_SYSTEM,
  orderForClosedTask,
  ordersApprovedOn,
  orderTaskIdOf,
  THIS_SERVICE,
  writtenByDoseChange,
  type AuthorisableRequest,
} from '@kc/task-states';
import { ClosingsCrossedByTheEhr } from './closings-crossed-by-the-ehr';
import { DeletedTasks } from './deleted-tasks';
import { DoseChangesCrossedByTheEhr } from './dose-changes-crossed-by-the-ehr';
import { TasksClosedInEhr } from './tasks-closed-in-ehr';

/** Orders closed per transaction: a conflict on one puts off only these until the next run. */
const ORDERS_PER_TRANSACTION = 50;
const TASKS_PER_SEARCH = 100;
/**
 * How far back, at least, Tasks closed elsewhere are looked at for the EHR's orders they were approved on (runs every
 * 15 min): a closing that lost a race is tried again for a day.
 */
const CLOSED_TASKS_LOOKBACK_MS = 24 * 3600_000;
/** Its Redis key (after the queue prefix): when the last sweep that finished began. */
const SWEPT_MARK = 'sweep-mark:answered-orders';

/**
 * From when Tasks closed elsewhere are read: a day back, or further back to when the last finished sweep began (less
 * the polls' overlap for the server's clock), so sweeps missed for longer (a worker down for days) are made up; with no
 * sweep on record (a first run, a Redis that lost its data), the reconciliation's lookback (RECONCILE_LOOKBACK_MS).
 */
export function closedTasksFrom(
  now: Date,
  lastSweepBegan: string | undefined,
  config: Pick<AppConfig, 'pollOverlapMs' | 'reconcileLookbackMs'>,
): Date {
  const dayBack = now.getTime() - CLOSED_TASKS_LOOKBACK_MS;
  const last = lastSweepBegan ? Date.parse(lastSweepBegan) : NaN;
  if (!Number.isFinite(last)) return new Date(Math.min(dayBack, now.getTime() - config.reconcileLookbackMs));
  return new Date(Math.min(dayBack, last - config.pollOverlapMs));
}

/** The open sessions given under an order a dose change here wrote, of this service's open orders and their Tasks. */
function doseChangedSessions(
  written: { order: AuthorisableRequest; taskId: string }[],
  tasks: Map<string, Task>,
): Task[] {
  return written.flatMap(({ order, taskId }) => {
    const task = tasks.get(taskId);
    return task && writtenByDoseChange(order) && !isClosedByStatus(task) ? [task] : [];
  });
}

/**
 * Reconciliation of orders with their Tasks (with the overdue sweep): an order this service wrote (keyed `Task/<id>`)
 * that is still active or held while its Task is done, superseded or rejected is closed as the infusion or the
 * rejection closes it now; one whose Task was deleted is withdrawn (DeletedTasks). Orders written before session 17
 * stayed active after their infusion; this closes them on the first run after an upgrade, and any an EHR left open by
 * closing a Task behind the service's back; since session 42 also the EHR's orders sessions were approved on, whose Task
 * was closed since the last sweep (closedTasksFrom; since session 43, before only the last day), and since session 43
 * the Tasks an EHR closed by their status whose notification and poll were missed (TasksClosedInEhr: the EHR's
 * replacements too). One read of the Tasks closed since with the orders they name, one of the open orders, one of their
 * Tasks, then If-Match updates with a Provenance naming the service.
 */
@Injectable()
export class AnsweredOrdersSweep {
  private readonly logger = new Logger(AnsweredOrdersSweep.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly deletedTasks: DeletedTasks,
    private readonly tasksClosedInEhr: TasksClosedInEhr,
    private readonly crossedClosings: ClosingsCrossedByTheEhr,
    private readonly crossedDoseChanges: DoseChangesCrossedByTheEhr,
    @InjectQueue(QUEUES.maintenance) private readonly queue: Queue,
    @Inject(APP_CONFIG)
    private readonly config: Pick<AppConfig, 'pollOverlapMs' | 'reconcileLookbackMs' | 'queuePrefix'>,
  ) {}

  async sweep(now = new Date()): Promise<{ open: number; closed: number; withdrawn: number }> {
    const redis = await this.queue.client;
    const markKey = `${this.config.queuePrefix}:${SWEPT_MARK}`;
    const lastSweepBegan = (await redis.get(markKey)) ?? undefined;
    const { approvedOn, closedInEhr, closedHere } = await this.closedTasksSince(
      closedTasksFrom(now, lastSweepBegan, this.config),
    );
    // Sessions an EHR closed by their status, whose notification and poll were missed: closed whole (their orders, the
    // EHR's replacements too, and reminders) before the orders still open are read.
    const inEhr = await this.tasksClosedInEhr.close(closedInEhr, now);
    const written = await this.openOrders();
    const tasks = await this.tasksOf(written.map((o) => o.taskId));
    for (const { task } of approvedOn) tasks.set(task.id!, task);
    const orders = [...written, ...approvedOn];
    const withdrawn = await this.withdrawForDeletedTasks(
      orders.map((o) => o.taskId).filter((id) => !tasks.has(id)),
      now,
    );
    const closures = orders.flatMap(({ order, taskId }) => {
      const task = tasks.get(taskId);
      const closed = task && orderForClosedTask(task, order);
      return closed ? [{ read: order, closed }] : [];
    });
    let closed = 0;
    for (let i = 0; i < closures.length; i += ORDERS_PER_TRANSACTION) {
      const chunk = closures.slice(i, i + ORDERS_PER_TRANSACTION);
      const provenance = changeProvenance({
        targets: chunk.map(({ closed: c }) => ({ reference: `${c.resourceType}/${c.id}` })),
        who: THIS_SERVICE,
        activity: 'close the order of a closed Task',
        now,
        reason: 'Its Task was done, superseded or rejected while the order stayed open',
      });
      const entries: BundleEntry[] = [
        ...chunk.map(({ read, closed: c }) => updateEntry(c, read.meta?.versionId)),
        { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
      ];
      try {
        await this.fhir.transaction(entries);
        closed += chunk.length;
      } catch (err) {
        if (!isStaleWrite(err)) throw err;
      }
    }
    closed += inEhr.closed;
    // The EHR's replacements that crossed a closing here, its second read failed: after the orders above, so that
    // none is written twice in one run.
    closed += await this.crossedClosings.close(closedHere, now);
    // The EHR's replacements that crossed a dose change here, its second read failed: the open sessions given under
    // an order a dose change wrote.
    closed += await this.crossedDoseChanges.close(doseChangedSessions(written, tasks), now);
    if (closed) this.logger.log({ msg: 'closed the orders of closed Tasks', closed, open: orders.length });
    // Only a sweep that finished moves the mark: one that failed is made up by the next.
    await redis.set(markKey, now.toISOString());
    return { open: orders.length, closed, withdrawn };
  }

  /**
   * Open orders whose Task is gone (deleted on the FHIR server, its notification missed): withdrawn as the deletion's
   * job withdraws them. A conflict leaves that one to the next run.
   */
  private async withdrawForDeletedTasks(taskIds: string[], now: Date): Promise<number> {
    let withdrawn = 0;
    for (const taskId of new Set(taskIds)) {
      try {
        withdrawn += (await this.deletedTasks.heard(taskId, now)).withdrawn;
      } catch (err) {
        if (!isStaleWrite(err)) throw err;
      }
    }
    return withdrawn;
  }

  /** The orders this service wrote that are still to be given (active or held), with their Task's id. */
  private async openOrders(): Promise<{ order: AuthorisableRequest; taskId: string }[]> {
    const found: { order: AuthorisableRequest; taskId: string }[] = [];
    for (const type of AUTHORISABLE_TYPES) {
      // By `_lastUpdated`: paged by cursor on Medplum's server, whose `_offset` stops at 10,000.
      // Only this service's orders (their key's system): a shared FHIR server holds every other application's too.
      const orders = await this.fhir.searchAll<AuthorisableRequest>(type, {
        identifier: `${ORDER_KEY_SYSTEM}|`,
        status: 'active,on-hold',
        _sort: '_lastUpdated',
        _count: 200,
      });
      for (const order of orders) {
        const taskId = orderTaskIdOf(order);
        if (taskId) found.push({ order, taskId });
      }
    }
    return found;
  }

  /**
   * The Tasks closed since `from`, in one paged search with the orders they name: the infusion sessions an EHR closed
   * by their status (isTaskClosedInEhr), and of the others the EHR's orders sessions were approved on (`onOrder`,
   * named in the Task's `basedOn`) still open: closed by the service with its order missed, say (since session 42;
   * before, only orders written here were reconciled).
   */
  private async closedTasksSince(from: Date): Promise<{
    approvedOn: { order: AuthorisableRequest; taskId: string; task: Task }[];
    closedInEhr: Task[];
    closedHere: Task[];
  }> {
    const approvedOn: { order: AuthorisableRequest; taskId: string; task: Task }[] = [];
    const closedInEhr: Task[] = [];
    const closedHere: Task[] = [];
    for await (const page of this.fhir.searchPages<Task>('Task', {
      status: CLOSED_BY_EHR.join(','),
      _lastUpdated: `ge${from.toISOString()}`,
      // Paged by cursor on Medplum's server, whose `_offset` stops at 10,000 (days of closings made up at once).
      _sort: '_lastUpdated',
      _include: 'Task:based-on',
      _count: 200,
    })) {
      const open = new Map(
        includedOf<MedicationRequest>(page, 'MedicationRequest')
          .filter((o) => isOpenOrder(o) && !orderTaskIdOf(o))
          .map((o) => [`MedicationRequest/${o.id}`, o]),
      );
      for (const task of matchesOf<Task>(page)) {
        if (isTaskClosedInEhr(task)) {
          closedInEhr.push(task);
          continue;
        }
        closedHere.push(task);
        for (const ref of ordersApprovedOn(task)) {
          const order = open.get(ref);
          if (order && task.id) approvedOn.push({ order, taskId: task.id, task });
        }
      }
    }
    return { approvedOn, closedInEhr, closedHere };
  }

  private async tasksOf(ids: string[]): Promise<Map<string, Task>> {
    const unique = [...new Set(ids)];
    const tasks = new Map<string, Task>();
    for (let i = 0; i < unique.length; i += TASKS_PER_SEARCH)
      for (const task of await this.fhir.searchAll<Task>('Task', {
        _id: unique.slice(i, i + TASKS_PER_SEARCH).join(','),
        _count: TASKS_PER_SEARCH,
      }))
        tasks.set(task.id!, task);
    return tasks;
  }
}
