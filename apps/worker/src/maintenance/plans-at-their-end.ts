import { Inject, Injectable, Logger } from '@nestjs/common';
import type { CarePlan, MedicationRequest, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, skipsStaleWrite, type RaceHandling } from '@kc/fhir';
import {
  COMPLETED_AT_ITS_END,
  COMPLETED_AT_ITS_END_TAG_SEARCH,
  planCompletedAtItsEnd,
  planReopenedForItsNewEnd,
  plansPastTheirEnd,
  REOPENED_FOR_ITS_NEW_END,
  type StillOpenUnder,
} from '@kc/followups';
import { OPEN_STATUS_SEARCH } from '@kc/task-states';
import { serviceChangeEntries } from './withdrawal-writes';

const DAY_MS = 86_400_000;
/** Plans whose open Tasks and orders one search reads (its `based-on` list). */
const PLANS_PER_READ = 50;

/**
 * Plans whose end the EHR set (`CarePlan.period.end`): completed once it has passed with nothing open under them
 * (planCompletedAtItsEnd), and made active again when the EHR moves the end of one completed so (planReopenedForItsNewEnd).
 * Each write is the plan with If-Match and a Provenance naming the service. Looked at by the 15-minute sweep (time
 * passing is notified by nobody) and for one plan when its change is notified. Since session 50.
 */
@Injectable()
export class PlansAtTheirEnd {
  private readonly logger = new Logger(PlansAtTheirEnd.name);

  constructor(
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  /**
   * Two searches (active plans ending before tomorrow, by the server's `eb` on their period; plans completed here whose
   * period reaches past yesterday, so moved), the exact end judged in the clinic's zone; then one search each of the
   * open Tasks and orders under the plans ended, PLANS_PER_READ at a time. A write refused as stale is left for the
   * next sweep. `reopened`: the plans made active again, for what their old end kept out to be proposed.
   */
  async sweep(now = new Date()): Promise<{ completed: number; reopened: string[] }> {
    const [ending, completedHere] = await Promise.all([
      this.fhir.searchAll<CarePlan>('CarePlan', {
        status: 'active',
        date: `eb${new Date(now.getTime() + DAY_MS).toISOString()}`,
        _count: 200,
      }),
      this.fhir.searchAll<CarePlan>('CarePlan', {
        status: 'completed',
        _tag: COMPLETED_AT_ITS_END_TAG_SEARCH,
        date: `ge${new Date(now.getTime() - DAY_MS).toISOString()}`,
        _count: 200,
      }),
    ]);
    const completed = await this.complete(plansPastTheirEnd(ending, now, this.config.clinicTimeZone), now, 'skip');
    const reopened = await this.reopen(completedHere, now, 'skip');
    if (completed || reopened.length)
      this.logger.log({ msg: 'plans at their end', completed, reopened: reopened.length });
    return { completed, reopened };
  }

  /**
   * One plan whose change was notified: a write that lost a race fails, for the job to run again. `withOpenTasks`: the
   * plan as a search of its open Tasks included it (it has some, so it is not to be completed: nothing is read);
   * otherwise it is read.
   */
  async judge(
    carePlanId: string,
    now = new Date(),
    withOpenTasks?: CarePlan,
  ): Promise<{ completed: number; reopened: number }> {
    const plan = withOpenTasks ?? (await this.fhir.readIfExists<CarePlan>('CarePlan', carePlanId));
    if (!plan) return { completed: 0, reopened: 0 };
    const ended = withOpenTasks ? [] : plansPastTheirEnd([plan], now, this.config.clinicTimeZone);
    return {
      completed: await this.complete(ended, now, 'fail'),
      reopened: (await this.reopen([plan], now, 'fail')).length,
    };
  }

  private async complete(plans: CarePlan[], now: Date, raced: RaceHandling): Promise<number> {
    let completed = 0;
    for (let i = 0; i < plans.length; i += PLANS_PER_READ) {
      const batch = plans.slice(i, i + PLANS_PER_READ);
      const open = await this.stillOpenUnder(batch);
      for (const plan of batch) {
        const over = planCompletedAtItsEnd(plan, open, now, this.config.clinicTimeZone);
        if (over && (await this.write(over, plan, 'complete the plan at its end', COMPLETED_AT_ITS_END, now, raced)))
          completed++;
      }
    }
    return completed;
  }

  /** The ids of the plans made active again. */
  private async reopen(plans: CarePlan[], now: Date, raced: RaceHandling): Promise<string[]> {
    const reopened: string[] = [];
    for (const plan of plans) {
      const again = planReopenedForItsNewEnd(plan, now, this.config.clinicTimeZone);
      if (
        again &&
        (await this.write(again, plan, 'reopen the plan for its new end', REOPENED_FOR_ITS_NEW_END, now, raced))
      )
        reopened.push(plan.id!);
    }
    return reopened;
  }

  /** The open Tasks and the orders still to give under these plans (two searches, together). */
  private async stillOpenUnder(plans: CarePlan[]): Promise<StillOpenUnder> {
    const basedOn = plans.map((p) => `CarePlan/${p.id}`).join(',');
    const [tasks, orders] = await Promise.all([
      this.fhir.searchAll<Task>('Task', { 'based-on': basedOn, status: OPEN_STATUS_SEARCH, _count: 200 }),
      this.fhir.searchAll<MedicationRequest>('MedicationRequest', {
        'based-on': basedOn,
        status: 'active,on-hold',
        _count: 200,
      }),
    ]);
    return { tasks, orders };
  }

  private async write(
    changed: CarePlan,
    read: CarePlan,
    activity: string,
    reason: string,
    now: Date,
    raced: RaceHandling,
  ): Promise<boolean> {
    try {
      await this.fhir.transaction(serviceChangeEntries([{ resource: changed, read }], read, { activity, reason }, now));
      return true;
    } catch (err) {
      if (!skipsStaleWrite(err, raced)) throw err;
      return false;
    }
  }
}
