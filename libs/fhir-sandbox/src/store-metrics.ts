import { Counter, Gauge, type Registry } from 'prom-client';
import type { FhirSandbox } from './fhir-sandbox-server';
import type { StoreStats } from './sqlite-repository';
import type { StoreBackups } from './store-backups';
import type { NotifierStats } from './subscription-notifier';

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
  // The store's Subscriptions (its notifications to the service's webhook and to anyone else subscribed).
  const notifications = (pick: (n: NotifierStats) => number) => () =>
    read().then((s) => (s.notifications ? pick(s.notifications) : 0));
  monotonic(
    'kc_fhir_store_notifications_delivered_total',
    'Embedded FHIR store: Subscription notifications accepted by their endpoint',
    notifications((n) => n.delivered),
  );
  monotonic(
    'kc_fhir_store_notification_failures_total',
    'Embedded FHIR store: Subscription notification attempts refused or unanswered (each retried with backoff)',
    notifications((n) => n.failedAttempts),
  );
  monotonic(
    'kc_fhir_store_notifications_dropped_total',
    'Embedded FHIR store: Subscription notifications given up (attempts run out, or the queue full): the polls find them',
    notifications((n) => n.dropped),
  );
  gauge(
    'kc_fhir_store_notifications_pending',
    'Embedded FHIR store: Subscription notifications queued, in flight or waiting to be retried',
    (s) => s.notifications?.pending ?? 0,
  );
  gauge(
    'kc_fhir_store_notification_outbox',
    'Embedded FHIR store: committed changes whose Subscription notifications are not all settled (kept across a restart)',
    (s) => s.outbox,
  );
  const cpuMs = sandbox.cpuMs;
  if (cpuMs)
    monotonic('kc_fhir_store_cpu_seconds_total', 'Embedded FHIR store: CPU of its own thread', () =>
      cpuMs().then((ms) => ms / 1000),
    );
}

/** The embedded store's backups on /metrics: when the newest was written (alert on its age) and failures. */
export function registerBackupMetrics(registry: Registry, backups: Pick<StoreBackups, 'list' | 'failures'>): void {
  new Gauge({
    name: 'kc_fhir_store_last_backup_timestamp_seconds',
    help: 'Embedded FHIR store: when its newest backup on disk was written (0: none)',
    registers: [registry],
    collect() {
      const newest = backups.list()[0];
      this.set(newest ? Date.parse(newest.createdAt) / 1000 : 0);
    },
  });
  let reported = 0;
  new Counter({
    name: 'kc_fhir_store_backup_failures_total',
    help: 'Embedded FHIR store: backups that failed since the process started',
    registers: [registry],
    collect() {
      if (backups.failures > reported) this.inc(backups.failures - reported);
      reported = backups.failures;
    },
  });
}

function ignore(): void {}
