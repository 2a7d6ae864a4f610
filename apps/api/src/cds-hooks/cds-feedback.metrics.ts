import { Injectable } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';
import type { CdsFeedback } from './feedback';

/**
 * What CDS clients reported clinicians did with the cards: how often a service's cards are accepted or overridden,
 * and with which override reason code (a code, never the clinician's comment).
 */
@Injectable()
export class CdsFeedbackMetrics {
  private readonly outcomes: Counter<'service' | 'outcome' | 'reason'>;

  constructor(registry: Registry) {
    this.outcomes = new Counter({
      name: 'kc_cds_feedback_total',
      help: 'CDS Hooks feedback: cards accepted or overridden, by service and override reason code',
      labelNames: ['service', 'outcome', 'reason'],
      registers: [registry],
    });
  }

  /** Reason codes given a series of their own so far: a client cannot grow the metrics without bound. */
  private readonly reasons = new Set<string>();

  record(service: string, feedback: CdsFeedback[]): void {
    for (const f of feedback)
      this.outcomes.inc({ service, outcome: f.outcome, reason: this.reasonLabel(f.overrideReason?.reason?.code) });
  }

  /** A code as a label only when it looks like one (free text must not become a series), and only the first 50. */
  private reasonLabel(code: string | undefined): string {
    if (!code) return 'none';
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(code)) return 'other';
    if (!this.reasons.has(code) && this.reasons.size >= MAX_REASON_LABELS) return 'other';
    this.reasons.add(code);
    return code;
  }
}

const MAX_REASON_LABELS = 50;
