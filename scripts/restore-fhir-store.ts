import * as fs from 'node:fs';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig, type AppConfig } from '@kc/config';
import { backupsIn, restoreStore, RestoreRefused } from '@kc/fhir-sandbox';
import { forgetCompletedWork, queueSweepsNow, redisOptions } from '@kc/queue';
import { dropWorklistIndex } from '@kc/worklist-index';

const USAGE = `usage: npm run fhir-store:restore -- latest | <backup name> | <backup file>
       npm run fhir-store:restore -- --redis-only   (after restoring an external FHIR server's database)
`;

/**
 * Restores the embedded FHIR store from a backup, with the service stopped, and resets what the service derived
 * from the store in Redis (the worklist index, the ids of completed work), so that it rebuilds them from the
 * restored store. Uses the service's own environment (FHIR_DATA_DIR, FHIR_BACKUP_DIR, REDIS_URL, QUEUE_PREFIX).
 * Without an argument it lists the backups.
 */
async function main(): Promise<number> {
  const config = loadConfig();
  const [which] = process.argv.slice(2);
  if (which === '--redis-only') return resetDerivedState(config);
  if (config.fhirBaseUrl) {
    process.stderr.write(
      `FHIR_BASE_URL is set (${config.fhirBaseUrl}): restore that server's database where it runs, then run this with --redis-only\n`,
    );
    return 1;
  }
  const backupDir = config.fhirBackup.dir;
  const backups = backupDir ? backupsIn(backupDir) : [];
  if (!which) {
    process.stdout.write(USAGE);
    process.stdout.write(`backups in ${backupDir ?? '(no FHIR_BACKUP_DIR)'}, newest first:\n`);
    for (const b of backups) process.stdout.write(`  ${b.name}  ${(b.bytes / 2 ** 20).toFixed(1)} MB\n`);
    if (!backups.length) process.stdout.write('  (none)\n');
    return 2;
  }
  const file = backupFile(which, backupDir, backups[0]?.name);
  if (!file) {
    process.stderr.write(`no backup "${which}" (in ${backupDir ?? 'no FHIR_BACKUP_DIR'}, nor as a file)\n`);
    return 1;
  }
  // Redis first: a store restored without the reset would leave the worklist missing Tasks.
  await withRedis(config, (redis) => redis.ping()).catch((err: Error) => {
    throw new RestoreRefused(`${err.message}; nothing was changed`);
  });
  const restored = await restoreStore(config.fhirDataDir, file);
  process.stdout.write(`restored ${file}\n  into ${restored.dataFile} (${restored.resources} resources)\n`);
  if (restored.replaced) process.stdout.write(`  the store it replaced is kept as ${restored.replaced}\n`);
  return resetDerivedState(config).catch((err: Error) => {
    throw new Error(
      `the store was restored but Redis was not reset (${err.message}): run this again with --redis-only`,
    );
  });
}

/**
 * The worklist index dropped (rebuilt at the next start), completed work forgotten, and the reconciliation sweeps
 * queued to run as soon as a worker starts (they redo what the restore lost).
 */
async function resetDerivedState(config: AppConfig): Promise<number> {
  const keys = await withRedis(config, (redis) => dropWorklistIndex(redis, config.queuePrefix));
  const forgotten = await forgetCompletedWork(config, config.queuePrefix);
  const sweeps = await queueSweepsNow(config, config.queuePrefix);
  process.stdout.write(
    `Redis (${config.queuePrefix}): worklist index dropped (${keys} keys), completed jobs forgotten ${JSON.stringify(forgotten)}, sweeps queued: ${sweeps.join(', ')}\n`,
  );
  process.stdout.write(
    'start the service: it rebuilds the worklist from the store, and the sweeps redo the follow-ups, booster moves ' +
      'and reminders the restored store lacks\n',
  );
  return 0;
}

async function withRedis<T>(config: AppConfig, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({
    ...redisOptions(config),
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  try {
    await redis.connect().catch((err: Error) => {
      throw new Error(`Redis is not reachable: ${err.message}`);
    });
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/** `latest`, a backup's name in the backup directory, or a path. */
function backupFile(which: string, backupDir: string | undefined, newest: string | undefined): string | undefined {
  if (which === 'latest') return newest && backupDir ? path.join(backupDir, newest) : undefined;
  if (backupDir && fs.existsSync(path.join(backupDir, which))) return path.join(backupDir, which);
  return fs.existsSync(which) ? path.resolve(which) : undefined;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof RestoreRefused ? '' : 'restore failed: '}${(err as Error).message}\n`);
    process.exit(1);
  },
);
