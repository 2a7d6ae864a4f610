import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import type { Task } from '@medplum/fhirtypes';
import { FhirClient, skipsStaleWrite, type RaceHandling } from '@kc/fhir';
import { changesOfTaskClosedInEhr, givenSessionWrites, isTaskClosedInEhr } from '@kc/followups';
import { ordersAndRemindersOf, serviceChangeEntries } from './withdrawal-writes';

/**
 * A Task an EHR closed by its status alone (changesOfTaskClosedInEhr), heard from its
 * notification or the poll (TasksChangedInEhr): its orders still to give closed as that status says and its reminders revoked, with a
 * Provenance naming the service, in one transaction with If-Match. A conflict (the EHR changed an order meanwhile)
 * fails the job, whose retry reads again; a Task open again, or already dealt with, writes nothing. The 15-minute
 * reconciliation (AnsweredOrdersSweep) runs it too over the Tasks closed since its last run, for what a missed
 * notification and poll left.
 */
@Injectable()
export class TasksClosedInEhr {
  private readonly logger = new Logger(TasksClosedInEhr.name);

  constructor(
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  /**
   * Those of `tasks` that are sessions closed in the EHR (one batch of their orders and reminders, then a transaction
   * each). `raced: 'skip'` (the reconciliation): a write that lost a race is left to its next run.
   */
  async close(
    tasks: Task[],
    now = new Date(),
    raced: RaceHandling = 'skip',
  ): Promise<{ closed: number; revoked: number }> {
    const sessions = tasks.filter(isTaskClosedInEhr);
    const result = { closed: 0, revoked: 0 };
    if (!sessions.length) return result;
    const { orders, reminders } = await ordersAndRemindersOf(this.fhir, sessions);
    for (const task of sessions) {
      const changes = changesOfTaskClosedInEhr({
        task,
        open: orders.get(task.id!),
        reminders,
        zone: this.config.clinicTimeZone,
      });
      if (!changes) continue;
      try {
        await this.fhir.transaction(
          serviceChangeEntries(
            givenSessionWrites(changes),
            task,
            changes.administration
              ? {
                  activity: 'given at the pump',
                  reason: `Given at the pump; its Task was ${task.status} in the EHR`,
                  sources: [`MedicationAdministration/${changes.administration.id}`],
                }
              : { activity: 'close the order of a closed Task', reason: `Its Task was ${task.status} in the EHR` },
            now,
          ),
        );
      } catch (err) {
        if (!skipsStaleWrite(err, raced)) throw err;
        continue;
      }
      result.closed += changes.orders.length;
      result.revoked += changes.reminders.length;
      this.logger.log({
        msg: 'closed what a session closed in the EHR authorised',
        task: task.id,
        closed: changes.orders.length,
        revoked: changes.reminders.length,
      });
    }
    return result;
  }
}
