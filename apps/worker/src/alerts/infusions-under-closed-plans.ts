import { Inject, Injectable, Logger } from '@nestjs/common';
import type { CarePlan, Procedure } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { batchResult, FhirClient, getEntry } from '@kc/fhir';
import { carePlanReferencesOf, nothingPlannedUnder } from '@kc/followups';
import {
  infusionUnderClosedPlanAlertKey,
  infusionUnderClosedPlanAlertMessage,
  infusionUnderClosedPlanAlertRecord,
  type InfusionUnderClosedPlanAlert,
} from '@kc/protocols';
import { AlertDelivery } from './alert-delivery';
import { AlertsOwed, type AlertOwed } from './alerts-owed';

const KIND = 'infusion-under-closed-plan' as const;

/** How long an alert stays owed: the reconciliation's lookback; past it, the clinic has long found out otherwise. */
const OWED_FOR_MS = 7 * 86_400_000;

/** An infusion the follow-up left without a check, its plan being over, and why in words. */
export interface InfusionUnderClosedPlan {
  procedure: Procedure;
  carePlan: CarePlan;
  why: string;
}

/**
 * Tells the clinic of infusions charted under a plan the EHR recorded in error (the follow-up plans nothing under it,
 * so no post-infusion check; under a plan stopped or completed it plans the check, since session 52): by each of its
 * channels once per infusion (AlertDelivery; one
 * search of the records, then a send and a record each). A failure is thrown: the infusion's job runs again, and what
 * was told is not told again. Nothing when the clinic has no channel. Since session 51; before, only a log line.
 * Since session 54 each alert is owed (AlertsOwed) until told: the sweep looks again (lookAgain) at one whose job's
 * retries a mail server down outlasted; before, nothing sent it.
 */
@Injectable()
export class InfusionsUnderClosedPlans {
  private readonly logger = new Logger(InfusionsUnderClosedPlans.name);

  constructor(
    private readonly delivery: AlertDelivery,
    private readonly owed: AlertsOwed,
    private readonly fhir: FhirClient,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  async tell(infusions: InfusionUnderClosedPlan[], now = new Date()): Promise<void> {
    const channels = this.delivery.channels();
    const alerts = infusions.filter((i): i is InfusionUnderClosedPlanAlert => Boolean(i.procedure.id && i.carePlan.id));
    if (!channels.length || !alerts.length) return;
    // Owed before the first send: a worker dying mid-way leaves it to the sweep too.
    await this.owed.owe(KIND, alerts.map(owedFor), now);
    const told = await this.delivery.recordsOf(
      alerts.flatMap((alert) => channels.map(({ channel }) => infusionUnderClosedPlanAlertKey(alert, channel))),
    );
    const context = { worklistUrl: this.delivery.worklistUrl(), zone: this.config.clinicTimeZone };
    let failed: Error | undefined;
    const settled: string[] = [];
    for (const alert of alerts) {
      const outcome = await this.delivery.deliverUntold(told, {
        kind: KIND,
        key: (channel) => infusionUnderClosedPlanAlertKey(alert, channel),
        message: (channel) => infusionUnderClosedPlanAlertMessage(alert, { ...context, channel }),
        record: (message, sent) => infusionUnderClosedPlanAlertRecord(alert, message, sent),
        about: { procedure: alert.procedure.id, carePlan: alert.carePlan.id },
        retriedBy: 'the infusion’s job, then the sweep',
        now,
      });
      // Left to another sender, it stays owed until a look finds it on record.
      if (!outcome.failed && !outcome.left) settled.push(owedFor(alert).about);
      failed ??= outcome.failed;
    }
    await this.owed.settle(KIND, settled);
    if (failed) throw failed;
  }

  /**
   * The sweep's look at the alerts still owed (their jobs' retries spent, or a worker gone mid-send): each one whose
   * infusion is still charted, completed, under its plan, and whose plan is still recorded in error, told as its job
   * would have (once per channel: tell); the others settled (the plan put right is followed up as usual). One batch
   * read of the infusions and plans, only when any is owed. A failure is logged: the next sweep looks again. How many
   * infusions the clinic was told of.
   */
  async lookAgain(now = new Date()): Promise<number> {
    if (!this.delivery.channels().length) return 0;
    try {
      const owed = await this.owed.all(KIND);
      if (!owed.length) return 0;
      const expired = owed.filter((o) => now.getTime() - Date.parse(o.since) > OWED_FOR_MS);
      if (expired.length)
        this.logger.warn({
          msg: 'clinic alerts given up after a week untold',
          kind: KIND,
          about: expired.map((o) => o.about),
        });
      // Each owed with its plan (owedFor).
      const current = owed.filter((o): o is AlertOwed & { carePlan: string } => !expired.includes(o) && !!o.carePlan);
      const refs = current.flatMap((o) => [o.about, o.carePlan]);
      const read = refs.length ? await this.fhir.batch(refs.map((r) => getEntry(r))) : { entry: [] };
      const entries = read.entry ?? [];
      const standing = current.flatMap((o, i) => {
        const procedure = batchResult<Procedure>(entries[2 * i], o.about);
        const carePlan = batchResult<CarePlan>(entries[2 * i + 1], o.carePlan);
        const why = procedure && carePlan && stillUntold(procedure, carePlan);
        return why ? [{ procedure, carePlan, why }] : [];
      });
      const moot = current.filter((o) => !standing.some((s) => `Procedure/${s.procedure.id}` === o.about));
      await this.owed.settle(
        KIND,
        [...expired, ...moot].map((o) => o.about),
      );
      await this.tell(standing, now);
      return standing.length;
    } catch (err) {
      this.logger.warn({ msg: 'owed clinic alerts not told; the next sweep tries', kind: KIND, error: String(err) });
      return 0;
    }
  }
}

function owedFor(alert: InfusionUnderClosedPlanAlert): { about: string; carePlan: string } {
  return { about: `Procedure/${alert.procedure.id}`, carePlan: `CarePlan/${alert.carePlan.id}` };
}

/**
 * Why an infusion owed an alert still has no check: charted (completed) under this plan, which the EHR still has
 * closed with nothing planned under it (nothingPlannedUnder), as the follow-up judged it.
 */
function stillUntold(procedure: Procedure, carePlan: CarePlan): string | undefined {
  const charted =
    procedure.status === 'completed' && carePlanReferencesOf(procedure).includes(`CarePlan/${carePlan.id}`);
  return charted ? nothingPlannedUnder(carePlan) : undefined;
}
