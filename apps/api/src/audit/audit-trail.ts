import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { AuditEvent, BundleEntry } from '@medplum/fhirtypes';
import { Counter, Gauge, Registry } from 'prom-client';
import { FhirClient } from '@kc/fhir';

/** Most AuditEvents in one batch request. */
const MAX_BATCH = 100;
/** Most AuditEvents held while the FHIR server cannot take them (then new ones are counted as dropped). */
const MAX_PENDING = 10_000;
/** Wait before writing again after the FHIR server failed a batch. */
const RETRY_MS = 2_000;

/**
 * Writes AuditEvents to the FHIR server, where the patient data they are about lives (never to logs or Redis): in
 * batches, off the request's path (a request does not wait for its audit record), in the order they happened.
 * While the server cannot take them they wait in memory (up to MAX_PENDING, retried every RETRY_MS) and are written
 * at shutdown if it can; a process that dies meanwhile loses what was waiting (counted: kc_audit_events_pending).
 * At least once: a batch whose answer was lost is written again (each event's meta.tag tells the copies apart).
 */
@Injectable()
export class AuditTrail implements OnApplicationShutdown {
  private readonly logger = new Logger(AuditTrail.name);
  private readonly pending: AuditEvent[] = [];
  private writing?: Promise<void>;
  private retry?: NodeJS.Timeout;
  private readonly events: Counter<'result'>;
  private sent = 0;

  constructor(
    private readonly fhir: FhirClient,
    registry: Registry,
  ) {
    this.events = new Counter({
      name: 'kc_audit_events_total',
      help: 'Access AuditEvents: written to the FHIR server, refused by it (invalid), dropped (too many waiting), or throttled (unauthenticated refusals past their budget)',
      labelNames: ['result'],
      registers: [registry],
    });
    const pending = this.pending;
    new Gauge({
      name: 'kc_audit_events_pending',
      help: 'Access AuditEvents waiting to be written (the FHIR server is slow or cannot take them)',
      registers: [registry],
      collect() {
        this.set(pending.length);
      },
    });
  }

  record(event: AuditEvent): void {
    if (this.pending.length >= MAX_PENDING) {
      this.events.inc({ result: 'dropped' });
      return;
    }
    this.pending.push(event);
    this.write();
  }

  /** An AuditEvent not recorded on purpose (AccessDenials' budget for unauthenticated refusals): counted only. */
  countThrottled(): void {
    this.events.inc({ result: 'throttled' });
  }

  /** Requests sent to the FHIR server so far (tests count an operation's own requests without these). */
  get requests(): number {
    return this.sent;
  }

  /** Resolves once nothing is waiting or being written (tests; shutdown). */
  async settled(): Promise<void> {
    while (this.writing) await this.writing;
  }

  async onApplicationShutdown(): Promise<void> {
    clearTimeout(this.retry);
    this.retry = undefined;
    await this.settled();
    if (this.pending.length) {
      this.write();
      await this.settled();
    }
    if (this.pending.length)
      this.logger.error({ msg: 'access audit events not written at shutdown', count: this.pending.length });
  }

  private write(): void {
    if (this.writing || this.retry) return;
    this.writing = this.drain().finally(() => (this.writing = undefined));
  }

  private async drain(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.slice(0, MAX_BATCH);
      let answers: BundleEntry[];
      this.sent++;
      try {
        answers =
          (
            await this.fhir.batch(
              batch.map((resource) => ({ resource, request: { method: 'POST', url: 'AuditEvent' } })),
            )
          ).entry ?? [];
      } catch (err) {
        this.logger.warn({ msg: 'access audit events not written yet', count: this.pending.length, err: String(err) });
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.write();
        }, RETRY_MS);
        this.retry.unref();
        return;
      }
      this.pending.splice(0, batch.length);
      const refused = answers.filter((a) => !/^2/.test(a.response?.status ?? '')).length;
      this.events.inc({ result: 'written' }, batch.length - refused);
      if (refused) {
        this.events.inc({ result: 'refused' }, refused);
        this.logger.error({ msg: 'access audit events refused by the FHIR server', count: refused });
      }
    }
  }
}
