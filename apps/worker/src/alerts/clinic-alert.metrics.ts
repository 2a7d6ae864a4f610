import { Injectable } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';
import type { ClinicAlertKind } from '@kc/protocols';

/**
 * Alerts to the clinic by what they were about and whether the email went: a mail server that refuses them leaves
 * nothing on record and only a log line, so `outcome="not-sent"` rising is what an operator alerts on.
 */
@Injectable()
export class ClinicAlertMetrics {
  private readonly alerts: Counter<'kind' | 'outcome'>;

  constructor(registry: Registry) {
    this.alerts = new Counter({
      name: 'kc_clinic_alerts_total',
      help: 'Emails to the clinic (CLINIC_ALERT_EMAIL) by kind (effect-reported, orders-held) and outcome (sent, not-sent: tried again by the next sweep)',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    });
  }

  record(kind: ClinicAlertKind, outcome: 'sent' | 'not-sent'): void {
    this.alerts.inc({ kind, outcome });
  }
}
