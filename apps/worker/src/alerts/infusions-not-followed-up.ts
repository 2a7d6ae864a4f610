import { Inject, Injectable, Logger } from '@nestjs/common';
import type { CarePlan, Communication, Procedure } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, includedOf, matchesOf } from '@kc/fhir';
import {
  infusionFollowedUpNoticeKey,
  infusionFollowedUpNoticeMessage,
  infusionNotFollowedUpAlertKey,
  infusionNotFollowedUpAlertMessage,
  infusionNotFollowedUpAlertRecord,
  type ClinicAlertChannel,
  type FollowUpRan,
  type InfusionNotFollowedUpAlert,
} from '@kc/protocols';
import { DeadLetters, type FollowUpFailing } from '@kc/queue';
import { ignoredWhy } from '../followups/follow-up.metrics';
import { AlertDelivery } from './alert-delivery';
import { AlertsOwed, type AlertOwed } from './alerts-owed';

const KIND = 'infusion-not-followed-up' as const;

/** Past this since first owed, an alert is let go: its job was given up (a week) and the clinic long told. */
const OWED_FOR_MS = 8 * 86_400_000;

/** What the sweep's look did: infusions the clinic was told of now, and notices that their follow-up has run. */
export interface FollowUpFailingLook {
  told: number;
  noticed: number;
}

/**
 * Tells the clinic of infusions whose follow-up has kept failing (its job a dead letter for FOLLOW_UP_FAILING_ALERT_MS:
 * the FHIR server refusing what it writes, or down that long), so a clinician knows the post-infusion check is missing
 * from the worklist, and tells them again once it has run (planned, or judged to plan nothing). Looked at by the
 * 15-minute sweep; each alert owed (AlertsOwed) from the look that finds it due until its notice is sent. Reads, only
 * when any is owed: the failed follow-up jobs, one search of the infusions with their plans, one of the alerts' records.
 * A failure is logged and left to the next look (a FHIR server that cannot be read is told of once it can). Nothing
 * when the clinic has no channel. Since session 61; before, only the operator's dead-letter view said so.
 */
@Injectable()
export class InfusionsNotFollowedUp {
  private readonly logger = new Logger(InfusionsNotFollowedUp.name);

  constructor(
    private readonly deadLetters: DeadLetters,
    private readonly delivery: AlertDelivery,
    private readonly owed: AlertsOwed,
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone' | 'followUpFailingAlertMs'>,
  ) {}

  async look(now = new Date()): Promise<FollowUpFailingLook> {
    if (!this.delivery.channels().length) return { told: 0, noticed: 0 };
    try {
      const failing = new Map((await this.deadLetters.followUpsFailing()).map((f) => [aboutOf(f.procedureId), f]));
      const due = [...failing.values()].filter(
        (f) => now.getTime() - f.failingSince >= this.config.followUpFailingAlertMs,
      );
      await this.owed.owe(
        KIND,
        due.map((f) => ({ about: aboutOf(f.procedureId) })),
        now,
      );
      const { standing, ran } = await this.judge(await this.owed.all(KIND), failing, now);
      if (!standing.length && !ran.length) return { told: 0, noticed: 0 };
      return await this.tell(standing, ran, now);
    } catch (err) {
      this.logger.warn({ msg: 'infusions not followed up not told; the next sweep tries', error: String(err) });
      return { told: 0, noticed: 0 };
    }
  }

  /**
   * Of the alerts owed: those whose follow-up still fails (to tell), those whose follow-up has run (to notice), the
   * rest left (being tried again now) or let go (gone, or owed past OWED_FOR_MS).
   */
  private async judge(
    owed: AlertOwed[],
    failing: Map<string, FollowUpFailing>,
    now: Date,
  ): Promise<{ standing: FollowUpFailing[]; ran: { procedureId: string; ran: FollowUpRan }[] }> {
    const standing: FollowUpFailing[] = [];
    const ran: { procedureId: string; ran: FollowUpRan }[] = [];
    const letGo: string[] = [];
    for (const o of owed) {
      const procedureId = o.about.split('/')[1];
      if (now.getTime() - Date.parse(o.since) > OWED_FOR_MS) letGo.push(o.about);
      else if (failing.has(o.about)) standing.push(failing.get(o.about)!);
      else {
        const job = await this.deadLetters.followUpJobState(procedureId);
        if (job.state === 'ran') ran.push({ procedureId, ran: ranAs(job.returned) });
        else if (job.state === 'gone') letGo.push(o.about);
      }
    }
    if (letGo.length) {
      this.logger.warn({ msg: 'infusion follow-up alerts let go (job gone, or owed past 8 days)', about: letGo });
      await this.owed.settle(KIND, letGo);
    }
    return { standing, ran };
  }

  private async tell(
    standing: FollowUpFailing[],
    ran: { procedureId: string; ran: FollowUpRan }[],
    now: Date,
  ): Promise<FollowUpFailingLook> {
    const ids = [...standing.map((s) => s.procedureId), ...ran.map((r) => r.procedureId)];
    const found = await this.fhir.search<Procedure>('Procedure', {
      _id: ids.join(','),
      _include: 'Procedure:based-on',
      _count: String(ids.length),
    });
    const procedures = new Map(matchesOf<Procedure>(found).map((p) => [p.id!, p]));
    const plans = new Map(includedOf<CarePlan>(found, 'CarePlan').map((c) => [`CarePlan/${c.id}`, c]));
    const alertOf = (procedureId: string, failingSince: number): InfusionNotFollowedUpAlert | undefined => {
      const procedure = procedures.get(procedureId);
      if (!procedure) return undefined;
      const carePlan = (procedure.basedOn ?? []).map((b) => plans.get(b.reference ?? '')).find(Boolean);
      return {
        procedure: procedure as Procedure & { id: string },
        carePlan: carePlan as CarePlan & { id: string },
        failingSince,
      };
    };
    const channels = this.delivery.channels().map((c) => c.channel);
    const told = await this.delivery.recordsOf(
      ids.flatMap((id) =>
        channels.flatMap((c) => [
          infusionNotFollowedUpAlertKey({ procedure: { id } }, c),
          infusionFollowedUpNoticeKey({ procedure: { id } }, c),
        ]),
      ),
    );
    const context = { worklistUrl: this.delivery.worklistUrl(), zone: this.config.clinicTimeZone };
    let toldNow = 0;
    for (const s of standing) {
      const alert = alertOf(s.procedureId, s.failingSince);
      if (!alert) continue; // The infusion gone from the server: its job has nothing to plan; let go when it is.
      const outcome = await this.delivery.deliverUntold(told, {
        kind: KIND,
        key: (channel) => infusionNotFollowedUpAlertKey(alert, channel),
        message: (channel) => infusionNotFollowedUpAlertMessage(alert, { ...context, channel }),
        record: (message, sent) => infusionNotFollowedUpAlertRecord(alert, message, sent),
        about: { procedure: alert.procedure.id, carePlan: alert.carePlan?.id },
        retriedBy: 'the sweep',
        now,
      });
      if (outcome.sent) toldNow++;
    }
    let noticed = 0;
    const settled: string[] = [];
    for (const r of ran) {
      // The infusion gone from the server meanwhile: the notice names no day.
      const alert = alertOf(r.procedureId, 0) ?? { procedure: { id: r.procedureId } };
      const { failed } = await this.delivery.noticeDealtWith(told, {
        alertKey: (channel) => infusionNotFollowedUpAlertKey(alert, channel),
        key: (channel) => infusionFollowedUpNoticeKey(alert, channel),
        message: (channel) => infusionFollowedUpNoticeMessage(alert, r.ran, { ...context, channel }),
        record: (message, sent) => infusionNotFollowedUpAlertRecord(alert, message, sent),
        about: { procedure: r.procedureId },
        now,
      });
      if (failed) continue; // Owed still: the next look sends the notice.
      if (wasTold(told, r.procedureId, channels)) noticed++;
      settled.push(aboutOf(r.procedureId));
    }
    await this.owed.settle(KIND, settled);
    return { told: toldNow, noticed };
  }
}

function aboutOf(procedureId: string): string {
  return `Procedure/${procedureId}`;
}

function wasTold(told: Map<string, Communication>, procedureId: string, channels: ClinicAlertChannel[]): boolean {
  return channels.some((c) => told.has(infusionNotFollowedUpAlertKey({ procedure: { id: procedureId } }, c)));
}

/** How the follow-up job ended, in the notice's words (its returned outcome; ignoredWhy's bounded reasons). */
export function ranAs(returned: unknown): FollowUpRan {
  const outcome = returned as { status?: string; reason?: string } | null | undefined;
  if (outcome?.status !== 'ignored') return { planned: true };
  return { planned: false, why: IGNORED_IN_WORDS[ignoredWhy(outcome.reason ?? '')] ?? 'it is not followed up' };
}

/** Why an infusion is not followed up, in a clinician's words, by ignoredWhy's label (no ids: this goes by email). */
const IGNORED_IN_WORDS: Record<string, string> = {
  'plan-completed': 'its care plan is completed',
  'plan-revoked': 'its care plan was stopped',
  'plan-entered-in-error': 'its care plan was recorded in error',
  'plan-not-found': 'its care plan is not found on the FHIR server',
  'procedure-not-found': 'the infusion is no longer on record',
  'charted-twice': 'it was charted twice, and its other record was followed up',
  'no-plan': "it names none of the service's care plans, and a clinician is asked to link it",
  'not-an-infusion': 'it is not recorded as an infusion a protocol follows up',
};
