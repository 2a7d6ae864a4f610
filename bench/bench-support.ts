import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Session } from 'node:inspector/promises';
import { Redis } from 'ioredis';
import { mintToken } from '@kc/auth';
import { loadConfig, type AppConfig } from '@kc/config';
import { startService, type RunningService } from '../service/start-service';

/** Shared by the benchmarks: the service with an embedded FHIR server, percentiles, printing (timing: bench-timing). */

export { cpuClock, runConcurrently } from './bench-timing';

export const BENCH_SECRET = `bench-${randomUUID()}`;

export async function startBenchService(overrides: Partial<AppConfig> = {}): Promise<
  RunningService & {
    token: (role: 'clinician' | 'integration' | 'admin') => Promise<string>;
    /** The Redis server's own CPU ms so far (INFO cpu): BullMQ's scripts and the worklist index run there. */
    redisCpuMs: () => Promise<number>;
  }
> {
  // A fresh durable store per run (what `npm start` uses), removed when the service stops; FHIR_DATA_DIR=:memory:
  // measures the same store without the disk.
  const chosen = overrides.fhirDataDir ?? (process.env.FHIR_DATA_DIR === ':memory:' ? ':memory:' : undefined);
  const tempDataDir = chosen ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'kc-bench-fhir-'));
  const config: AppConfig = {
    ...loadConfig({ ...process.env, FHIR_BASE_URL: '' }),
    port: 0,
    fhirSandboxPort: 0,
    fhirDataDir: tempDataDir ?? chosen!,
    // Access AuditEvents spooled beside the store, as `npm start` does (in memory with an in-memory store).
    auditSpoolDir: tempDataDir ? `${tempDataDir}-audit-spool` : ':memory:',
    queuePrefix: `kc-bench-${randomUUID().slice(0, 8)}`,
    auth: { jwtSecret: BENCH_SECRET },
    // Without the store's notifications to the service: the benches send the events themselves (with them, the store
    // would notify each infusion the bench writes before the bench posts it), and earlier sessions' numbers are
    // without them.
    fhirSandboxSubscriptions: false,
    pollIntervalMs: 0,
    reconcileEveryMs: 0,
    reminderSweepMs: 0,
    deadLetterRevivalMs: 0,
    // The overdue sweep (every 15 min by default) would mark a preloaded store's ended windows overdue, thousands
    // of updates, in the middle of a measurement; benches measure the request paths, so it runs once a year here.
    overdueSweepEvery: '0 0 1 1 *',
    // No scheduled backup of the store (it holds every other operation back while it copies) in a measurement.
    fhirBackup: { dir: undefined, everyMs: 0, keep: 1 },
    logLevel: 'error',
    ...overrides,
  };
  const service = await startService(config, { logger: false });
  const redis = new Redis(config.redisUrl, { lazyConnect: true });
  return {
    ...service,
    stop: async () => {
      await service.stop();
      redis.disconnect();
      if (tempDataDir) fs.rmSync(tempDataDir, { recursive: true, force: true });
      if (tempDataDir) fs.rmSync(`${tempDataDir}-audit-spool`, { recursive: true, force: true });
    },
    redisCpuMs: async () => {
      const info = await redis.info('cpu');
      const seconds = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
      return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1000;
    },
    token: (role) =>
      mintToken({ sub: `bench-${role}`, roles: [role], fhirUser: 'Practitioner/bench' }, { secret: BENCH_SECRET }),
  };
}

export interface ThreadCpu {
  serviceMs: number;
  storeMs: number;
  redisMs: number;
}

/**
 * CPU milliseconds per thread from now until the returned function is called: the service's thread (API and
 * worker; for a raw call, the bench's client), the embedded store's own thread, and the Redis server (another
 * process on the same two cores). Tells which side an operation's cost is on: a ratio to a raw FHIR call cannot be
 * better than the store's CPU for that call against the store's CPU for the operation.
 */
export async function threadClock(
  service: RunningService & { redisCpuMs: () => Promise<number> },
): Promise<() => Promise<ThreadCpu>> {
  const storeCpu = service.sandbox?.cpuMs ?? (() => Promise.resolve(NaN));
  const serviceCpu = () => {
    const { user, system } = process.threadCpuUsage();
    return (user + system) / 1000;
  };
  const service0 = serviceCpu();
  const store0 = await storeCpu();
  const redis0 = await service.redisCpuMs();
  return async () => ({
    serviceMs: serviceCpu() - service0,
    storeMs: (await storeCpu()) - store0,
    redisMs: (await service.redisCpuMs()) - redis0,
  });
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

/**
 * Runs a measurement `count` times, one after another: the benches alternate each operation with its raw baseline
 * within a round and report medians over rounds.
 */
export async function inRounds<T>(count: number, measure: (round: number) => Promise<T>): Promise<T[]> {
  const all: T[] = [];
  for (let round = 0; round < count; round++) all.push(await measure(round));
  return all;
}

export function median(values: number[]): number {
  return medianBy(values, (v) => v);
}

/** The middle item by `key` (the lower middle of an even count). */
export function medianBy<T>(items: T[], key: (item: T) => number): T {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

export function percentile(sortedMs: number[], p: number): number {
  if (!sortedMs.length) return NaN;
  return sortedMs[Math.min(sortedMs.length - 1, Math.floor((p / 100) * sortedMs.length))];
}

export function header(title: string): void {
  process.stdout.write(
    `\n${title}\nmachine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), node ${process.version}\n`,
  );
}

export function row(label: string, value: string): void {
  process.stdout.write(`  ${label.padEnd(52)} ${value}\n`);
}

export const fmt = (n: number, digits = 1) => n.toFixed(digits);

/** Runs a benchmark's main and exits with its status, printing the error if it failed. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${(err instanceof Error && err.stack) || String(err)}\n`);
      process.exit(1);
    },
  );
}

/**
 * `fn` under the main thread's CPU profiler when BENCH_CPU_PROFILE names a directory (`<dir>/<label>.cpuprofile`, for
 * Chrome's DevTools or `npx speedscope`): where one phase of a bench spends the service's time, without the rest of
 * the run (preloads, other phases) in the profile. Otherwise just `fn`.
 */
export async function profiled<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_CPU_PROFILE;
  if (!dir) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    await fs.promises.mkdir(dir, { recursive: true });
    await fs.promises.writeFile(path.join(dir, `${label}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}
