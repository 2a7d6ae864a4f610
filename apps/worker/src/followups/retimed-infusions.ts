import { Inject, Injectable, Logger } from '@nestjs/common';
import type { CommunicationRequest, Procedure, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import {
  changesOfNewWindow,
  followUpsOfRetimedInfusion,
  hasReminders,
  performedTimesOf,
  reminderRulesForTask,
  type RetimedFollowUp,
} from '@kc/followups';
import { PlanDefinitions, remindersOfPlan } from '@kc/nest-core';
import { InfusionEventsProducer } from '@kc/queue';
import { OPEN_STATUS_SEARCH } from '@kc/task-states';
import { windowFollowedWrites } from '../maintenance/windows-moved-in-ehr';
import { FollowUpRunningError } from './administration-recorded';
import { infusionPlanNamedBy } from './infusion-plan';

/** Its Provenances' activity: what an EHR reading them sees was done. */
export const RECOUNT_FROM_RETIMED_INFUSION = 'recount a window from its re-timed infusion';

/**
 * An infusion whose time the EHR corrected after its follow-ups were planned: their windows counted again from the time
 * it says now (followUpsOfRetimedInfusion), each followed as a window set here (changesOfNewWindow: overdue no more when
 * due again, an approved session's reminders timed from it), in one transaction with If-Match on every Task and reminder
 * and a Provenance each naming the service, the version it changed and why. Heard at the infusion's notification or the
 * poll, as a patient-record job. One read of the infusion's history; the rest only when it was re-timed. A conflict (a
 * clinician deciding meanwhile) fails the job, whose retry reads again.
 */
@Injectable()
export class RetimedInfusions {
  private readonly logger = new Logger(RetimedInfusions.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly protocols: PlanDefinitions,
    private readonly infusions: InfusionEventsProducer,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  async heard(procedureId: string, now = new Date()): Promise<{ recounted: number; reminders: number }> {
    const none = { recounted: 0, reminders: 0 };
    const versions = await this.fhir.versionsOf<Procedure>('Procedure', procedureId);
    // Deleted since (its history's newest entry a deletion, which versionsOf leaves out): InfusionsInError's.
    if (performedTimesOf(versions).length < 2 || !(await this.fhir.readIfExists<Procedure>('Procedure', procedureId)))
      return none;
    // Its follow-up running now may have planned from the time before: this job runs again after its backoff, once that
    // has written (else those Tasks would keep the old windows until the infusion changed again).
    if (await this.infusions.isFollowingUp(procedureId)) throw new FollowUpRunningError(procedureId, 're-timing');
    // The plan it is a session of now (not an EHR's own it may name too: infusionPlanAmong).
    const found = await infusionPlanNamedBy(this.fhir, this.protocols, versions[0]);
    const planId = found?.carePlan.id;
    if (!found || !planId) return none;
    const { protocol } = found;
    // Every status an open Task may have in the EHR, not only those written here: one the EHR set to be done while it
    // awaited approval (in-progress, accepted...) is returned for approval later, and this job, heard once, is what
    // counts its window again (before, it was skipped, and came back with the old window: clinic day, big seed 5186).
    const tasks = await this.fhir.searchAll<Task>('Task', {
      'based-on': `CarePlan/${planId}`,
      status: OPEN_STATUS_SEARCH,
      _count: 200,
    });
    const recounted = followUpsOfRetimedInfusion({
      procedureId,
      versions,
      tasks,
      plan: protocol.plan,
      zone: this.config.clinicTimeZone,
    });
    if (!recounted.length) return none;
    const onPlan = await this.remindersOf(recounted, planId);
    const writes = [];
    let reminders = 0;
    for (const retimed of recounted) {
      const changes = changesOfNewWindow({
        task: retimed.task,
        rules: reminderRulesForTask(retimed.task, protocol),
        // Its own among them (changesOfNewWindow keeps those about it).
        reminders: onPlan,
        now,
        zone: this.config.clinicTimeZone,
        reason: retimed.reason,
      });
      reminders += changes.create.length + changes.move.length;
      const read = tasks.find((t) => t.id === retimed.task.id)!;
      writes.push(
        ...windowFollowedWrites({ ...read, id: retimed.task.id }, changes, RECOUNT_FROM_RETIMED_INFUSION, now),
      );
    }
    await this.fhir.transaction(writes);
    // Ids only (no patient data in logs).
    this.logger.log({
      msg: 'follow-ups recounted from a re-timed infusion',
      procedure: procedureId,
      tasks: recounted.length,
    });
    return { recounted: recounted.length, reminders };
  }

  /**
   * The plan's reminders, read once, when any recounted Task has them, whether its due window moved or not: they are
   * what its new window's reminders are compared with (moved, kept, or written where missing). Before, none were read
   * when the due window stood, so its reminders were all written again beside those on record; and for a window the
   * EHR had moved unheard, the old ones stayed (the clinic day, seed 2594).
   */
  private async remindersOf(recounted: RetimedFollowUp[], carePlanId: string): Promise<CommunicationRequest[]> {
    if (!recounted.some((r) => hasReminders(r.task))) return [];
    return remindersOfPlan(this.fhir, carePlanId);
  }
}
