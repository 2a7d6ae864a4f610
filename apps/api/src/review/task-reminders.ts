import { Inject, Injectable } from '@nestjs/common';
import type { CarePlan, CommunicationRequest, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, updateEntry } from '@kc/fhir';
import {
  aboutTask,
  checkDoneWhy,
  hasReminders,
  isReminder,
  noticeIfDecidedNow,
  sendTimeOf,
  plannedReminders,
  reminderChanges,
  reminderRulesForTask,
  remindersRevokedFor,
  revokedReminder,
  type ReminderRule,
} from '@kc/followups';
import { PlanDefinitions, remindersAboutTask } from '@kc/nest-core';
import { ReminderQueue } from '@kc/queue';
import { isReturnedForReview } from '@kc/task-states';
import type { Consequence } from './task-review.service';

/** A Task's reminder rules and the reminders it already has, read before the decision is written. */
export interface TaskReminderContext {
  rules: ReminderRule[];
  existing: CommunicationRequest[];
}

/**
 * The reminders a decision writes, in the decision's own transaction: an approval creates them, a reschedule moves
 * them (If-Match on each), a rejection revokes them. The worker delivers them (ReminderDelivery).
 */
@Injectable()
export class TaskReminders {
  constructor(
    private readonly fhir: FhirClient,
    private readonly protocols: PlanDefinitions,
    private readonly queue: ReminderQueue,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  /**
   * Tasks released from a contraindication hold: their reminders still active (skipped while held) are queued again,
   * at their time or now if it has passed, so each goes out unless its session's window has closed meanwhile (the
   * delivery decides, as for one approved late). One search of the plan's reminders.
   */
  async afterRelease(carePlanId: string, released: Task[], occasion: string): Promise<number> {
    if (!released.length) return 0;
    const tasks = new Set(released.map((t) => `Task/${t.id}`));
    const onPlan = await this.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
      'based-on': `CarePlan/${carePlanId}`,
      status: 'active',
      _count: 200,
    });
    const due = onPlan.filter((r) => isReminder(r) && tasks.has(aboutTask(r) ?? '') && r.id && sendTimeOf(r));
    for (const r of due) await this.queue.schedule(r.id!, sendTimeOf(r)!, Date.now(), occasion);
    return due.length;
  }

  /**
   * One search, and only for a Task that was approved before (a Task awaiting approval has no reminders yet): the
   * plan's reminders, those about this Task kept (CommunicationRequest has no search parameter for `about`).
   */
  async contextFor(task: Task, carePlan: CarePlan | undefined): Promise<TaskReminderContext> {
    const rules = await this.rulesFor(task, carePlan);
    // A Task never approved has none; one returned for review has those revoked then, made active again on approval.
    // One held with its order has them too, waiting (since session 44: before, rejecting it left them active).
    const hadSome = hasReminders(task) || isReturnedForReview(task);
    if (!rules.length || !hadSome || !task.id || !carePlan?.id) return { rules, existing: [] };
    return { rules, existing: await remindersAboutTask(this.fhir, carePlan.id, task.id) };
  }

  afterApproval(updated: Task, context: TaskReminderContext): Consequence[] {
    if (!updated.id) return [];
    const { create, move } = reminderChanges(
      plannedReminders({ ...updated, id: updated.id }, context.rules, new Date(), this.config.clinicTimeZone),
      context.existing,
    );
    return [
      ...create.map((resource) => ({ resource, request: { method: 'POST' as const, url: 'CommunicationRequest' } })),
      ...move.map(updateOf),
    ];
  }

  /**
   * A check recorded here (`$complete`): its reminders not sent yet revoked with it (since session 44; before, an EHR
   * reading CommunicationRequest.status saw the one-week-check reminder pending until its delivery revoked it).
   */
  afterCompletion(task: Task, context: TaskReminderContext): Consequence[] {
    return remindersRevokedFor(task, context.existing, checkDoneWhy(task)).map(({ revoked }) => updateOf(revoked));
  }

  afterRejection(context: TaskReminderContext, reason: string): Consequence[] {
    return context.existing
      .filter((r) => r.status === 'active')
      .map((r) => updateOf(revokedReminder(r, `Session rejected: ${reason}`)));
  }

  /**
   * What deciding on `task` now would do to its reminders' notice (`as` names the decision: "Approving now",
   * "Rescheduling to these dates"), with `window` as its window if it is to move.
   */
  async noticeOf(
    task: Task,
    carePlan: CarePlan | undefined,
    as: string,
    window = task.restriction?.period,
  ): Promise<string | undefined> {
    const moved: Task = { ...task, restriction: { ...task.restriction, period: window } };
    return noticeIfDecidedNow({
      rules: await this.rulesFor(task, carePlan),
      task: moved,
      now: new Date(),
      as,
      zone: this.config.clinicTimeZone,
    });
  }

  /** The rules of the protocol its plan was applied with (the catalog's, or an EHR's read from the FHIR server). */
  private async rulesFor(task: Task, carePlan: CarePlan | undefined): Promise<ReminderRule[]> {
    const protocol = carePlan && (await this.protocols.ofCarePlan(carePlan));
    return reminderRulesForTask(task, protocol);
  }
}

function updateOf(resource: CommunicationRequest): Consequence {
  return updateEntry(resource, resource.meta?.versionId);
}
