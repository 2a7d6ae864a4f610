import { Inject, Injectable, ServiceUnavailableException } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import {
  HealthCheckService,
  HealthIndicatorService,
  type HealthCheckResult,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import { FhirClient, readAndSearchEach } from '@kc/fhir';
import { ProtocolCatalog } from '@kc/protocols';
import { QUEUES } from '@kc/queue';

export interface HealthCheck {
  status: 'up' | 'down';
  latencyMs: number;
  error?: string;
  problems?: string[];
}

export interface HealthReport {
  status: 'ok' | 'degraded';
  checks: { redis: HealthCheck; fhir: HealthCheck; profiles: HealthCheck; alertRecipients?: HealthCheck };
}

const PROBE_TIMEOUT_MS = 3000;

/**
 * Readiness through @nestjs/terminus: Redis and the FHIR server are critical indicators (down: the check fails),
 * unavailable protocol files a non-critical one (the other protocols are still served: 200, `degraded`), and so are
 * clinic alert recipients (CLINIC_ALERT_RECIPIENTS) the FHIR server does not have: alerts addressed to them reach
 * nobody's inbox (or are refused by a server checking references), which an operator must hear of. The report keeps this
 * service's own shape, `status` and `checks`, which operators and the tests read.
 */
@Injectable()
export class HealthService {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly fhir: FhirClient,
    @InjectQueue(QUEUES.followups) private readonly followups: Queue,
    private readonly catalog: ProtocolCatalog,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicAlertRecipients'>,
  ) {}

  /** The report, and whether the instance can serve (Redis and the FHIR server up). */
  async check(): Promise<{ ready: boolean; report: HealthReport }> {
    let result: HealthCheckResult;
    try {
      result = await this.health.check([
        () => this.redis(),
        () => this.fhirServer(),
        () => this.profiles(),
        ...(this.config.clinicAlertRecipients.length ? [() => this.alertRecipients()] : []),
      ]);
    } catch (err) {
      // Terminus throws 503 with the full result when a critical indicator is down.
      if (!(err instanceof ServiceUnavailableException)) throw err;
      result = err.getResponse() as HealthCheckResult;
    }
    const checks = {
      redis: toCheck(result.details.redis),
      fhir: toCheck(result.details.fhir),
      profiles: toCheck(result.details.profiles),
      ...(result.details.alertRecipients ? { alertRecipients: toCheck(result.details.alertRecipients) } : {}),
    };
    const ready = checks.redis.status === 'up' && checks.fhir.status === 'up';
    const ok = ready && checks.profiles.status === 'up' && checks.alertRecipients?.status !== 'down';
    return { ready, report: { status: ok ? 'ok' : 'degraded', checks } };
  }

  /**
   * Down at once while the connection is not ready: BullMQ's client queues commands until Redis is back, so a ping
   * would only wait for the timeout, and a readiness probe with a shorter timeout than ours would see no answer.
   */
  private redis(): Promise<HealthIndicatorResult<'redis'>> {
    return this.probe('redis', async () => {
      const client = await this.followups.client;
      if (client.status !== 'ready') throw new Error(`not connected (${client.status})`);
      await (client as unknown as { ping(): Promise<string> }).ping();
    });
  }

  private fhirServer(): Promise<HealthIndicatorResult<'fhir'>> {
    return this.probe('fhir', () => this.fhir.ping());
  }

  /** A profile that failed validation is left out, not fatal: the service runs degraded and says why. */
  private profiles(): HealthIndicatorResult<'profiles'> {
    const problems = this.catalog.problems;
    const session = this.indicator.check('profiles');
    if (!problems.length) return session.up({ responseTime: 0 });
    return session.down({
      responseTime: 0,
      message: `${this.catalog.unavailable.length} file(s) in fhir-profiles unavailable`,
      problems,
    });
  }

  /** Each clinic alert recipient read (one batch): down naming those the FHIR server does not have. */
  private async alertRecipients(): Promise<HealthIndicatorResult<'alertRecipients'>> {
    const recipients = this.config.clinicAlertRecipients;
    let missing: string[] = [];
    const probed = await this.probe('alertRecipients', async () => {
      const { read } = await readAndSearchEach(this.fhir, recipients, []);
      missing = recipients.filter((_, i) => !read[i]);
    });
    if (probed.alertRecipients.status === 'down' || !missing.length) return probed;
    return this.indicator.check('alertRecipients').down({
      responseTime: probed.alertRecipients.responseTime,
      message: `${missing.length} of CLINIC_ALERT_RECIPIENTS not found on the FHIR server`,
      problems: missing.map((r) => `${r} not found`),
    });
  }

  /** Up when `check` resolves within PROBE_TIMEOUT_MS, down with its error otherwise; timed either way. */
  private async probe<const Key extends string>(
    key: Key,
    check: () => Promise<unknown>,
  ): Promise<HealthIndicatorResult<Key>> {
    const session = this.indicator.check(key);
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        check(),
        new Promise(
          (_, reject) => (timer = setTimeout(() => reject(new Error('timed out after 3 s')), PROBE_TIMEOUT_MS)),
        ),
      ]);
      return session.up({ responseTime: elapsed() });
    } catch (err) {
      return session.down({ responseTime: elapsed(), message: (err as Error).message });
    } finally {
      clearTimeout(timer);
    }
  }
}

function toCheck(detail: Record<string, unknown> | undefined): HealthCheck {
  const status = detail?.status === 'up' ? 'up' : 'down';
  const check: HealthCheck = { status, latencyMs: Math.round(Number(detail?.responseTime ?? 0)) };
  if (status === 'down') check.error = typeof detail?.message === 'string' ? detail.message : 'unavailable';
  if (Array.isArray(detail?.problems)) check.problems = detail.problems as string[];
  return check;
}
