import { Inject, Injectable, Logger } from '@nestjs/common';
import type { DetectedIssue, Procedure, Task } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, updateEntry } from '@kc/fhir';
import { openOrdersOfSessions, PlanDefinitions, remindersOfPlan } from '@kc/nest-core';
import {
  performedOf,
  remindersEndedBy,
  sameTimeInfusions,
  sessionsGivenDuringInfusionInError,
  type GivenAtThePump,
  type InfusionDefinition,
} from '@kc/followups';
import { InfusionEventsProducer } from '@kc/queue';
import {
  INFUSION_IN_ERROR_KEY_SYSTEM,
  INFUSION_RECORDED_IN_ERROR,
  infusionInErrorIssue,
  infusionInErrorOf,
  tasksOfInfusion,
} from '@kc/protocols';
import { changeProvenance, isApproved, THIS_SERVICE } from '@kc/task-states';
import { FollowUpRunningError } from '../followups/administration-recorded';
import { infusionPlanNamedBy } from '../followups/infusion-plan';
import { planTiedToUnlinkedInfusion } from '../followups/unlinked-infusions';
import { ContraindicationSweep } from './contraindication-sweep';

/**
 * An infusion the EHR marked entered-in-error, or deleted, after its follow-ups were written: recorded once as an
 * `infusion-recorded-in-error` issue on its plan (infusion-in-error.ts), then the plan is checked now, so its approved
 * orders are held, nothing under it is approved and the clinic is told, until a clinician puts it right and overrides
 * the issue. Taken back before its follow-ups ran, an infusion the pump gave approved sessions during has them answered
 * by the pump's records (sessionsGivenDuringInfusionInError), with the same issue; so, since session 41, are those a
 * pump record charted after its follow-up left open. A completed infusion, or one that left nothing behind, changes
 * nothing.
 */
@Injectable()
export class InfusionsInError {
  private readonly logger = new Logger(InfusionsInError.name);

  constructor(
    private readonly fhir: FhirClient,
    private readonly contraindications: ContraindicationSweep,
    private readonly protocols: PlanDefinitions,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
    private readonly infusions: InfusionEventsProducer,
  ) {}

  /**
   * `lookingAgain`: the sweep's look (lookAgain), whose own contraindication step rechecks every plan next, so the plan
   * is rechecked here only when this changed it (an issue recorded, a session answered).
   */
  async heard(
    procedureId: string,
    now = new Date(),
    { lookingAgain = false }: { lookingAgain?: boolean } = {},
  ): Promise<{ recorded: number; held: number; answered: number }> {
    const none = { recorded: 0, held: 0, answered: 0 };
    const found = await this.fhir.readEvenIfDeleted<Procedure>('Procedure', procedureId);
    if (!found || (!found.deleted && found.resource.status !== 'entered-in-error')) return none;
    const procedure = found.resource;
    const patient = procedure.subject?.reference;
    // The plan it is a session of among those it names (not the EHR's own it may name too: infusionPlanAmong), else
    // the one evidence ties it to.
    const named = await infusionPlanNamedBy(this.fhir, this.protocols, procedure);
    const plan = named
      ? { carePlan: `CarePlan/${named.carePlan.id}`, infusion: named.infusion }
      : patient
        ? await this.planOfUnlinked({ ...procedure, id: procedureId })
        : undefined;
    if (!plan || !patient) return none;
    const { carePlan } = plan;
    const tasks = await this.fhir.searchAll<Task>('Task', { 'based-on': carePlan, _count: 200 });
    const leftBehind = tasksOfInfusion(procedureId, tasks);
    // Sessions the pump gave during it that are still open: taken back before its follow-up ran, or a pump record
    // charted after that follow-up (since session 41; before, only when it had left nothing behind, and such a session
    // stayed approved with its order active after the drug went in: clinic day, seed 1656).
    const given = await this.givenDuring({ ...procedure, id: procedureId }, tasks, now);
    const issue = infusionInErrorIssue({
      procedure: { ...procedure, id: procedureId },
      carePlan,
      patient: { reference: patient },
      ...leftBehind,
      givenAtThePump: given.map((g) => g.task.read),
      identified: now.toISOString(),
    });
    if (!issue) return none;
    // The issue first (conditional: once), then the sessions: a job cut short between them answers them when run again.
    const { created } = await this.fhir.create(issue, {
      ifNoneExist: { identifier: `${INFUSION_IN_ERROR_KEY_SYSTEM}|Procedure/${procedureId}` },
    });
    if (given.length) await this.answer(given, procedureId, carePlan, now);
    // Charted twice, this one followed up and the other left (sameTimeInfusions): the other is the infusion's record
    // now, and is followed up (since session 47). Not at the sweep's looks: once, when the taken-back is heard.
    if (!lookingAgain && leftBehind.planned.length + leftBehind.answered.length > 0)
      await this.followUpChartedAgain({ ...procedure, id: procedureId }, plan);
    if (created) this.logger.warn({ msg: 'infusion recorded in error after its follow-ups: plan held', carePlan });
    if (lookingAgain && !created && !given.length) return { ...none };
    const { held } = await this.contraindications.recheckFor(carePlan, now);
    return { recorded: created ? 1 : 0, held, answered: given.length };
  }

  /**
   * The sweep's look again at the infusions in error whose issue is unresolved: a pump record charted after their job
   * ran (a session given during one, left open and its order held with the plan) is answered now (heard again: the
   * issue is recorded once). One search of the unresolved issues; the rest only for each (few: a clinician resolves
   * them; the plan's recheck only when something changed, since session 42: the sweep rechecks every plan next). A
   * failure is logged, and the next sweep looks again. How many sessions were answered.
   */
  async lookAgain(now = new Date()): Promise<number> {
    try {
      const issues = await this.fhir.searchAll<DetectedIssue>('DetectedIssue', {
        code: `${INFUSION_RECORDED_IN_ERROR.system}|${INFUSION_RECORDED_IN_ERROR.code}`,
        status: 'preliminary',
        _count: 200,
      });
      let answered = 0;
      for (const issue of issues) {
        const procedureId = infusionInErrorOf(issue);
        if (procedureId) answered += (await this.heard(procedureId, now, { lookingAgain: true })).answered;
      }
      return answered;
    } catch (err) {
      this.logger.warn({ msg: 'infusions in error not looked at again; the next sweep tries', error: String(err) });
      return 0;
    }
  }

  /**
   * The plan's completed infusions charted for this one's time (sameTimeInfusions), left by their follow-up as this one
   * charted twice: followed up again now (their job added again; one running now fails this job, which runs again
   * after its backoff, by when it has finished). One search of the plan's completed infusions. `infusion`: the plan's
   * protocol's.
   */
  private async followUpChartedAgain(
    procedure: Procedure & { id: string },
    { carePlan, infusion }: { carePlan: string; infusion: InfusionDefinition },
  ): Promise<void> {
    const performed = performedOf(procedure);
    if (!performed) return;
    const others = await this.fhir.searchAll<Procedure>('Procedure', {
      'based-on': carePlan,
      status: 'completed',
      _count: 200,
    });
    // Judged as it was charted: the plan's infusions its follow-up took for copies of it.
    const asCharted = {
      procedureId: procedure.id,
      patientId: procedure.subject?.reference?.split('/')[1] ?? '',
      carePlanId: carePlan.slice('CarePlan/'.length),
      performed,
    };
    for (const other of sameTimeInfusions(asCharted, others, infusion)) {
      const { running } = await this.infusions.followUpAgain(other.id!);
      if (running) throw new FollowUpRunningError(other.id!, 'an infusion charted twice taken back');
      this.logger.log({ msg: 'infusion charted twice: the other one followed up', procedure: other.id });
    }
  }

  /**
   * An infusion charted naming no plan and taken back before its follow-up linked it (clinic day seed 2425): the plan
   * the pump's records during it tie it to, judged as it was charted (completed); else undefined.
   */
  private async planOfUnlinked(
    procedure: Procedure,
  ): Promise<{ carePlan: string; infusion: InfusionDefinition } | undefined> {
    const found = await planTiedToUnlinkedInfusion(this.fhir, this.protocols, { ...procedure, status: 'completed' });
    return 'carePlan' in found ? { carePlan: `CarePlan/${found.carePlan.id}`, infusion: found.infusion } : undefined;
  }

  /** The plan's approved sessions the pump gave during the infusion: one batch (their open orders, the pump's records). */
  private async givenDuring(procedure: Procedure, tasks: Task[], now: Date): Promise<GivenAtThePump[]> {
    // Infusion sessions only: what the pump gives is a medication order.
    const approved = tasks.filter(
      (t) => (isApproved(t) || t.status === 'on-hold') && t.focus?.reference?.startsWith('MedicationRequest/'),
    );
    if (!approved.length) return [];
    const orders = await openOrdersOfSessions(this.fhir, approved);
    return sessionsGivenDuringInfusionInError({
      procedureId: procedure.id!,
      performed: procedure.performedPeriod ?? { start: procedure.performedDateTime, end: procedure.performedDateTime },
      sessions: approved.flatMap((task) => {
        const open = orders.get(task.id!);
        return open ? [{ task, open }] : [];
      }),
      now,
      zone: this.config.clinicTimeZone,
    });
  }

  /**
   * Each session done and its order completed, and its reminders still to come revoked (since session 46; before, left
   * active until their delivery revoked them, so an EHR saw a fasting reminder pending for a session given: the clinic
   * day, seed 2663), with If-Match (a change meanwhile, the infusion's own follow-up say, fails the job, which judges
   * again) and a Provenance naming the service and the pump's records. One more read, the plan's reminders.
   */
  private async answer(given: GivenAtThePump[], procedureId: string, carePlan: string, now: Date): Promise<void> {
    const reminders = remindersEndedBy(
      given.map(({ task, by }) => ({ task: task.read, outcome: 'done' as const, by })),
      await remindersOfPlan(this.fhir, carePlan.slice('CarePlan/'.length)),
    );
    const provenance = changeProvenance({
      targets: [
        ...given.flatMap(({ task, orders }) => [
          { reference: `Task/${task.read.id}` },
          ...orders.map(({ read }) => ({ reference: `${read.resourceType}/${read.id}` })),
        ]),
        ...reminders.map((r) => ({ reference: `CommunicationRequest/${r.id}` })),
      ],
      who: THIS_SERVICE,
      activity: 'given at the pump',
      now,
      reason: `Given at the pump during the infusion Procedure/${procedureId}, recorded in error before its follow-ups`,
    });
    provenance.entity = given.map(({ administration }) => ({
      role: 'source',
      what: { reference: `MedicationAdministration/${administration.id}` },
    }));
    await this.fhir.transaction([
      ...given.flatMap(({ task, orders }) => [
        updateEntry(task.written, task.read.meta?.versionId),
        ...orders.map(({ read, written }) => updateEntry(written, read.meta?.versionId)),
      ]),
      ...reminders.map((r) => updateEntry(r, r.meta?.versionId)),
      { resource: provenance, request: { method: 'POST', url: 'Provenance' } },
    ]);
    this.logger.warn({ msg: 'sessions given at the pump during an infusion in error answered', given: given.length });
  }
}
