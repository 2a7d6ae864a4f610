import { Counter, Gauge, type Registry } from 'prom-client';
import type { FhirSandbox } from './fhir-sandbox-server';
import type { StoreStats } from './sqlite-repository';

/**
 * The embedded store on /metrics, read at each scrape: the database file and the WAL on disk (the data directory
 * grows with every version kept), commits, parameters indexed, and the CPU of the store's own thread. Sizes and
 * counts only: no patient data.
 */
export function registerStoreMetrics(registry: Registry, sandbox: Pick<FhirSandbox, 'storageStats' | 'cpuMs'>): void {
  const storageStats = sandbox.storageStats;
  if (!storageStats) return;
  // One read of the store per scrape, shared by its gauges.
  let reading: Promise<StoreStats> | undefined;
  const read = () => (reading ??= storageStats().finally(() => (reading = undefined)));
  const gauge = (name: string, help: string, pick: (stats: StoreStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        // A store closing with the service answers no more: the last value stays.
        await read().then((stats) => this.set(pick(stats)), ignore);
      },
    });
  gauge('kc_fhir_store_database_bytes', 'Embedded FHIR store: size of its database file', (s) => s.databaseBytes);
  gauge('kc_fhir_store_wal_bytes', 'Embedded FHIR store: write-ahead log not yet checkpointed', (s) => s.walBytes);
  gauge(
    'kc_fhir_store_indexed_parameters',
    'Embedded FHIR store: search parameters indexed (each from its first search on)',
    (s) => s.indexedParameters,
  );
  const monotonic = (name: string, help: string, value: () => Promise<number>) => {
    let reported = 0;
    new Counter({
      name,
      help,
      registers: [registry],
      async collect() {
        const now = await value().catch(() => reported);
        if (now > reported) this.inc(now - reported);
        reported = Math.max(reported, now);
      },
    });
  };
  monotonic('kc_fhir_store_commits_total', 'Embedded FHIR store: commits (each answers one or more operations)', () =>
    read().then((s) => s.groupCommits),
  );
  const cpuMs = sandbox.cpuMs;
  if (cpuMs)
    monotonic('kc_fhir_store_cpu_seconds_total', 'Embedded FHIR store: CPU of its own thread', () =>
      cpuMs().then((ms) => ms / 1000),
    );
}

function ignore(): void {}
