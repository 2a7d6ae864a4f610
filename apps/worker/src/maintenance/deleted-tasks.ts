import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import {
  DELETED_TASK_REASON,
  givenOfDeletedTask,
  givenSessionWrites,
  requestWrites,
  withdrawalOfDeletedTask,
} from '@kc/followups';
import { AUTHORISABLE_TYPES, type AuthorisableRequest } from '@kc/task-states';
import { ToDoIndex, WorklistIndex } from '@kc/worklist-index';
import { ordersAndRemindersOf, serviceChangeEntries, withdrawCrossedOrders } from './withdrawal-writes';

/**
 * A Task deleted on the FHIR server (withdrawalOfDeletedTask): its order still to be given, its draft proposal and its
 * reminders not sent are withdrawn; a session the pump recorded giving has its orders completed instead
 * (givenOfDeletedTask), with a Provenance naming the service, in one transaction with If-Match. Run when
 * the server notifies the deletion, and by the answered-orders sweep for an open order whose Task is gone (a
 * notification missed). A conflict (the EHR changed an order meanwhile) fails the job, whose retry reads again.
 */
@Injectable()
export class DeletedTasks {
  private readonly logger = new Logger(DeletedTasks.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly worklist: WorklistIndex,
    private readonly toDo: ToDoIndex,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  async heard(taskId: string, now = new Date()): Promise<{ withdrawn: number; given?: number }> {
    const found = await this.fhir.readEvenIfDeleted<Task>('Task', taskId);
    // There (written again since), or never this server's: nothing was deleted.
    if (!found?.deleted) return { withdrawn: 0 };
    // Off the lists too: its notification's own update could not read it back when the FHIR server was down (since
    // session 55; before, it stayed listed until the lists' reconciliation once the server gave up notifying it).
    await WorklistIndex.refreshAll([this.worklist, this.toDo], [taskId]);
    const task = { ...found.resource, id: taskId };
    const proposal = await this.proposalOf(task);
    const { orders, reminders } = await ordersAndRemindersOf(this.fhir, [task]);
    // Given at the pump (since session 42): its orders completed, as its infusion would have had the Task stayed.
    const given = givenOfDeletedTask({ task, open: orders.get(taskId), reminders, zone: this.config.clinicTimeZone });
    if (given) {
      await this.fhir.transaction(
        serviceChangeEntries(
          givenSessionWrites(given),
          task,
          {
            activity: 'given at the pump',
            reason: 'Given at the pump; its Task was deleted on the FHIR server',
            sources: [`MedicationAdministration/${given.administration.id}`],
          },
          now,
        ),
      );
      this.logger.log({ msg: 'completed the orders a deleted Task’s session was given under', task: taskId });
      return { withdrawn: 0, given: 1 };
    }
    const withdrawal = withdrawalOfDeletedTask({ task, proposal, open: orders.get(taskId), reminders });
    if (!withdrawal) return { withdrawn: 0 };
    const writes = requestWrites(withdrawal);
    await this.fhir.transaction(
      serviceChangeEntries(writes, task, { activity: 'withdraw', reason: DELETED_TASK_REASON }, now),
    );
    // The EHR's replacement of its order written meanwhile; a failure fails the job, whose retry withdraws it.
    if (withdrawal.order) await withdrawCrossedOrders(this.fhir, [{ task, reason: DELETED_TASK_REASON }], now);
    this.logger.log({ msg: 'withdrew what a deleted Task authorised', task: taskId, writes: writes.length });
    return { withdrawn: 1 };
  }

  /** The request the Task authorised (its focus), as it is now; none when it names none or it is gone too. */
  private async proposalOf(task: Task): Promise<AuthorisableRequest | undefined> {
    const [type, id] = task.focus?.reference?.split('/') ?? [];
    const authorisable = (AUTHORISABLE_TYPES as readonly string[]).includes(type ?? '');
    if (!authorisable || !id) return undefined;
    return this.fhir.readIfExists<AuthorisableRequest>(type as AuthorisableRequest['resourceType'], id);
  }
}
