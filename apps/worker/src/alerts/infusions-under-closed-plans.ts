import { Inject, Injectable } from '@nestjs/common';
import type { CarePlan, Procedure } from '@medplum/fhirtypes';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import {
  infusionUnderClosedPlanAlertKey,
  infusionUnderClosedPlanAlertMessage,
  infusionUnderClosedPlanAlertRecord,
  type InfusionUnderClosedPlanAlert,
} from '@kc/protocols';
import { AlertDelivery } from './alert-delivery';

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
 */
@Injectable()
export class InfusionsUnderClosedPlans {
  constructor(
    private readonly delivery: AlertDelivery,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
  ) {}

  async tell(infusions: InfusionUnderClosedPlan[], now = new Date()): Promise<void> {
    const channels = this.delivery.channels();
    const alerts = infusions.filter((i): i is InfusionUnderClosedPlanAlert => Boolean(i.procedure.id && i.carePlan.id));
    if (!channels.length || !alerts.length) return;
    const told = await this.delivery.recordsOf(
      alerts.flatMap((alert) => channels.map(({ channel }) => infusionUnderClosedPlanAlertKey(alert, channel))),
    );
    const context = { worklistUrl: this.delivery.worklistUrl(), zone: this.config.clinicTimeZone };
    let failed: Error | undefined;
    for (const alert of alerts) {
      const outcome = await this.delivery.deliverUntold(told, {
        kind: 'infusion-under-closed-plan',
        key: (channel) => infusionUnderClosedPlanAlertKey(alert, channel),
        message: (channel) => infusionUnderClosedPlanAlertMessage(alert, { ...context, channel }),
        record: (message, sent) => infusionUnderClosedPlanAlertRecord(alert, message, sent),
        about: { procedure: alert.procedure.id, carePlan: alert.carePlan.id },
        retriedBy: 'the infusion’s job',
        now,
      });
      failed ??= outcome.failed;
    }
    if (failed) throw failed;
  }
}
