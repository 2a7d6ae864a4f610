import { Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { FhirClient } from '@kc/fhir';
import { ProtocolCatalog } from '@kc/protocols';
import { QUEUES } from '@kc/queue';

export interface HealthReport {
  status: 'ok' | 'degraded';
  checks: Record<string, { status: 'up' | 'down'; latencyMs: number; error?: string; problems?: string[] }>;
}

@Injectable()
export class HealthService {
  constructor(
    private readonly fhir: FhirClient,
    @InjectQueue(QUEUES.followups) private readonly followups: Queue,
    private readonly catalog: ProtocolCatalog,
  ) {}

  async check(): Promise<HealthReport> {
    const [redis, fhir] = await Promise.all([
      probe(async () => {
        const client = (await this.followups.client) as unknown as { ping(): Promise<string> };
        await client.ping();
      }),
      probe(() => this.fhir.ping()),
    ]);
    // A profile that failed validation is left out, not fatal: the service runs degraded and says why.
    const problems = this.catalog.problems;
    const profiles = problems.length
      ? {
          status: 'down' as const,
          latencyMs: 0,
          error: `${this.catalog.unavailable.length} file(s) in fhir-profiles unavailable`,
          problems,
        }
      : { status: 'up' as const, latencyMs: 0 };
    const ok = redis.status === 'up' && fhir.status === 'up' && profiles.status === 'up';
    return { status: ok ? 'ok' : 'degraded', checks: { redis, fhir, profiles } };
  }
}

async function probe(check: () => Promise<unknown>): Promise<HealthReport['checks'][string]> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out after 3 s')), 3000))),
    ]);
    return { status: 'up', latencyMs: Math.round(performance.now() - started) };
  } catch (err) {
    return { status: 'down', latencyMs: Math.round(performance.now() - started), error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}
