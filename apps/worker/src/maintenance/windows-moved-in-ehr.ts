import { Inject, Injectable, Logger } from '@nestjs/common';
import type { BundleEntry, CarePlan, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, updateEntry } from '@kc/fhir';
import {
  carePlanReferenceOf,
  changesOfWindowMovedInEhr,
  hasReminders,
  reminderRulesForTask,
  type WindowFollowed,
} from '@kc/followups';
import { PlanDefinitions, reminderEntries, remindersAboutTask } from '@kc/nest-core';
import { changeProvenance, THIS_SERVICE } from '@kc/task-states';

/**
 * A Task whose due window was moved outside this service (windowMovedOutside), followed: the window as moved is the
 * one set here, an overdue one due again is overdue no more, and an approved session's reminders are timed from it
 * (changesOfWindowMovedInEhr). One transaction with If-Match on the Task and each reminder, and a Provenance naming the
 * service, the version it followed and why. Reads the plan and its reminders only for a session that has reminders. A
 * conflict (a clinician deciding meanwhile) fails the job, whose retry reads again.
 */
@Injectable()
export class WindowsMovedInEhr {
  private readonly logger = new Logger(WindowsMovedInEhr.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly protocols: PlanDefinitions,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  async follow(task: Task & { id: string }, now: Date): Promise<{ followed: number; reminders: number }> {
    const { rules, reminders } = await this.remindersOf(task);
    const changes = changesOfWindowMovedInEhr({ task, rules, reminders, now, zone: this.config.clinicTimeZone });
    if (!changes) return { followed: 0, reminders: 0 };
    await this.fhir.transaction(windowFollowedWrites(task, changes, 'follow a window moved in the EHR', now));
    const moved = changes.move.length + changes.create.length;
    this.logger.log({ msg: 'followed a window moved outside the service', task: task.id, reminders: moved });
    return { followed: 1, reminders: moved };
  }

  /** The Task's reminder rules and the reminders on record about it: none read for a Task that has none. */
  private async remindersOf(task: Task & { id: string }) {
    const plan = carePlanReferenceOf(task)?.slice('CarePlan/'.length);
    if (!plan || !hasReminders(task)) return { rules: [], reminders: [] };
    const carePlan = await this.fhir.readIfExists<CarePlan>('CarePlan', plan);
    const protocol = carePlan && (await this.protocols.ofCarePlan(carePlan));
    const rules = reminderRulesForTask(task, protocol);
    return { rules, reminders: rules.length ? await remindersAboutTask(this.fhir, plan, task.id) : [] };
  }
}

/**
 * A window followed, as transaction entries: the Task (If-Match on the version read), its reminders moved or created,
 * and a Provenance naming the service, the version it changed and why (changesOfNewWindow's reason).
 */
export function windowFollowedWrites(
  read: Task & { id: string },
  changes: WindowFollowed,
  activity: string,
  now: Date,
): BundleEntry[] {
  const written: (BundleEntry & { fullUrl?: string })[] = [
    updateEntry(changes.task, read.meta?.versionId),
    ...reminderEntries(changes),
  ];
  const provenance = changeProvenance({
    targets: written.map((e) => ({ reference: e.fullUrl ?? e.request!.url })),
    revisionOf: { reference: `Task/${read.id}/_history/${read.meta?.versionId}` },
    who: THIS_SERVICE,
    activity,
    now,
    reason: changes.reason,
  });
  return [...written, { resource: provenance, request: { method: 'POST', url: 'Provenance' } }];
}
