import { Injectable } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';
import type { ClinicAlertChannel, ClinicAlertKind } from '@kc/protocols';

/**
 * What an alert was about: an issue's kind, the notice that one is dealt with, an order's rate notice, a plan ended for a
 * death since taken back, or an infusion charted under a plan that is over.
 */
export type AlertKind =
  | ClinicAlertKind
  | 'resolved'
  | 'rate-since-approval'
  | 'death-taken-back'
  | 'infusion-under-closed-plan'
  | 'infusion-not-followed-up'
  | 'answers-not-recorded'
  | 'appointment-not-booked';

/**
 * Alerts to the clinic by what they were about, how they went and whether they did: a mail server (or a FHIR server)
 * that refuses them leaves nothing on record and only a log line, so `outcome="not-sent"` rising is what an operator
 * alerts on.
 */
@Injectable()
export class ClinicAlertMetrics {
  private readonly alerts: Counter<'kind' | 'outcome' | 'channel'>;

  constructor(registry: Registry) {
    this.alerts = new Counter({
      name: 'kc_clinic_alerts_total',
      help: "Alerts to the clinic by kind (effect-reported, orders-held; resolved: the notice that one is dealt with; rate-since-approval: an approved order giving another rate than its protocol proposes since the pump's late record; death-taken-back: a plan ended for a death the EHR no longer records; infusion-under-closed-plan: an infusion charted under a plan the EHR stopped, completed or recorded in error, so no post-infusion check was planned; infusion-not-followed-up: an infusion whose follow-up has kept failing, its check not planned; answers-not-recorded: a patient's check answers the service has kept failing to record; appointment-not-booked: an appointment booked or cancelled in the scheduling system the service has kept failing to take, its session's reminders timed from the protocol window), outcome (sent, not-sent: tried again by the next sweep, or by its job) and channel (email: CLINIC_ALERT_EMAIL; inbox: CLINIC_ALERT_RECIPIENTS)",
      labelNames: ['kind', 'outcome', 'channel'],
      registers: [registry],
    });
  }

  record(kind: AlertKind, outcome: 'sent' | 'not-sent', channel: ClinicAlertChannel): void {
    this.alerts.inc({ kind, outcome, channel });
  }
}
