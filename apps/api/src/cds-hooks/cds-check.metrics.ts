import { Injectable } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';

/** Why an order-sign check did not run for some orders (each gets a warning card saying so). */
export type CheckNotRun = 'records_timeout' | 'records_unreadable' | 'medication_unresolved';

/**
 * Orders whose contraindication check could not run, by why: what an operator alerts on, since the EHR shows each
 * only as a warning card to one clinician (the EHR's FHIR server slow or refusing, a Medication it cannot read).
 */
@Injectable()
export class CdsCheckMetrics {
  private readonly notRun: Counter<'service' | 'reason'>;

  constructor(registry: Registry) {
    this.notRun = new Counter({
      name: 'kc_cds_checks_not_run_total',
      help: "CDS Hooks order-sign: contraindication checks that could not run (a patient's orders, or an order naming an unreadable Medication), by reason",
      labelNames: ['service', 'reason'],
      registers: [registry],
    });
  }

  record(service: string, counts: Partial<Record<CheckNotRun, number>>): void {
    for (const [reason, n] of Object.entries(counts)) if (n) this.notRun.inc({ service, reason }, n);
  }
}
