import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { AuditEvent, BundleEntry } from '@medplum/fhirtypes';
import { Counter, Gauge, Registry } from 'prom-client';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { AUDIT_KEY_SYSTEM } from '@kc/protocols';
import { AuditSpool, type Spooled } from './audit-spool';

/** Most AuditEvents in one batch request. */
const MAX_BATCH = 100;
/** Most AuditEvents held while the FHIR server cannot take them (then new ones are counted as dropped). */
const MAX_PENDING = 10_000;
/** Wait before writing again after the FHIR server failed a batch. */
const RETRY_MS = 2_000;
/** How often the spool directory is looked at for the spools of processes that died (replicas sharing it). */
const ADOPT_EVERY_MS = 60_000;

/**
 * Writes AuditEvents to the FHIR server, where the patient data they are about lives (never to logs or Redis): in
 * batches, off the request's path (a request does not wait for its audit record), in the order they happened.
 * Each waits in the process's spool on disk (AuditSpool, AUDIT_SPOOL_DIR) from the moment it is recorded until the
 * server has taken it: while the server cannot take them (up to MAX_PENDING, retried every RETRY_MS), and across a
 * process that dies, whose spool the next process adopts. Written once: an event that may already be on the server
 * (its request got no answer, or it comes from a dead process's spool) is written as a conditional create on its
 * audit-key tag.
 */
@Injectable()
export class AuditTrail implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AuditTrail.name);
  private readonly pending: Spooled[] = [];
  private readonly spool: AuditSpool;
  private writing?: Promise<void>;
  private retry?: NodeJS.Timeout;
  private adopting?: NodeJS.Timeout;
  /** Shutting down: a failed write is not retried later. */
  private closing = false;
  /** Shut down: the spool is closed. */
  private stopped = false;
  private readonly events: Counter<'result'>;
  private sent = 0;

  constructor(
    private readonly fhir: FhirClient,
    registry: Registry,
    @Inject(APP_CONFIG)
    config: Pick<AppConfig, 'auditSpoolDir' | 'fhirBaseUrl'> & Partial<Pick<AppConfig, 'auditSpoolSync'>>,
  ) {
    this.spool = AuditSpool.open(config.auditSpoolDir, config.fhirBaseUrl ?? '', { sync: config.auditSpoolSync });
    this.events = new Counter({
      name: 'kc_audit_events_total',
      help: 'Access AuditEvents: written to the FHIR server, refused by it (invalid), dropped (too many waiting), throttled (unauthenticated refusals past their budget), or adopted (from the spool of a process that died)',
      labelNames: ['result'],
      registers: [registry],
    });
    const pending = this.pending;
    const spool = this.spool;
    new Gauge({
      name: 'kc_audit_spool_foreign_events',
      help: 'Access AuditEvents in AUDIT_SPOOL_DIR left by stopped processes bound for another FHIR server: written only by a process bound for that server (alert when above 0)',
      registers: [registry],
      collect() {
        this.set(spool.foreignWaiting);
      },
    });
    new Gauge({
      name: 'kc_audit_events_pending',
      help: 'Access AuditEvents waiting to be written (the FHIR server is slow or cannot take them)',
      registers: [registry],
      collect() {
        this.set(pending.length);
      },
    });
  }

  /** Writes what the spools of processes that died left, then looks for more every ADOPT_EVERY_MS. */
  onApplicationBootstrap(): void {
    this.adoptOrphans();
    this.adopting = setInterval(() => this.adoptOrphans(), ADOPT_EVERY_MS);
    this.adopting.unref();
  }

  record(event: AuditEvent): void {
    // After shutdown (a request still in flight while Nest's hooks run, before its HTTP server closes) nothing writes.
    if (this.pending.length >= MAX_PENDING || this.stopped) {
      this.events.inc({ result: 'dropped' });
      return;
    }
    this.pending.push({ seq: this.spooled(event), event, uncertain: false });
    this.write();
  }

  /** Written: out of the spool (if that fails, a later start writes them again, conditionally: once still). */
  private unspool(upTo: number): void {
    try {
      this.spool.remove(upTo);
    } catch (err) {
      this.logger.error({ msg: 'access audit events written but not removed from the spool', err: String(err) });
    }
  }

  /** Its place in the spool; 0 when the spool cannot take it (a full disk): it still waits here, in memory. */
  private spooled(event: AuditEvent): number {
    try {
      return this.spool.add(event);
    } catch (err) {
      this.logger.error({ msg: 'access audit event not spooled, kept in memory only', err: String(err) });
      return 0;
    }
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
    this.closing = true;
    clearInterval(this.adopting);
    clearTimeout(this.retry);
    this.retry = undefined;
    await this.settled();
    if (this.pending.length) {
      this.write();
      await this.settled();
    }
    this.stopped = true;
    const { kept } = this.spool.close();
    if (kept)
      this.logger.warn({
        msg: 'access audit events not written at shutdown, kept for the next start',
        count: kept,
        spool: this.spool.location,
      });
    else if (this.pending.length)
      this.logger.error({ msg: 'access audit events not written at shutdown', count: this.pending.length });
  }

  private adoptOrphans(): void {
    let adopted: Spooled[];
    try {
      adopted = this.spool.adoptOrphans();
    } catch (err) {
      this.logger.error({ msg: 'access audit spools of stopped processes not read', err: String(err) });
      return;
    }
    if (!adopted.length) return;
    this.logger.warn({ msg: 'access audit events left by a stopped process, to be written', count: adopted.length });
    this.events.inc({ result: 'adopted' }, adopted.length);
    this.pending.push(...adopted);
    this.write();
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
        answers = (await this.fhir.batch(batch.map(createEntry))).entry ?? [];
      } catch (err) {
        // The request may have landed with its answer lost: from now on these are written conditionally.
        for (const spooled of batch) spooled.uncertain = true;
        if (this.closing) return;
        this.logger.warn({ msg: 'access audit events not written yet', count: this.pending.length, err: String(err) });
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.write();
        }, RETRY_MS);
        this.retry.unref();
        return;
      }
      this.pending.splice(0, batch.length);
      this.unspool(Math.max(...batch.map((s) => s.seq)));
      const refused = answers.filter((a) => !/^2/.test(a.response?.status ?? '')).length;
      this.events.inc({ result: 'written' }, batch.length - refused);
      if (refused) {
        this.events.inc({ result: 'refused' }, refused);
        this.logger.error({ msg: 'access audit events refused by the FHIR server', count: refused });
      }
    }
  }
}

/** A create, conditional on the event's audit-key tag when it may already be on the server. */
function createEntry({ event, uncertain }: Spooled): BundleEntry {
  const key = uncertain ? event.meta?.tag?.find((t) => t.system === AUDIT_KEY_SYSTEM)?.code : undefined;
  return {
    resource: event,
    request: {
      method: 'POST',
      url: 'AuditEvent',
      ...(key && { ifNoneExist: `_tag=${encodeURIComponent(AUDIT_KEY_SYSTEM)}|${encodeURIComponent(key)}` }),
    },
  };
}
