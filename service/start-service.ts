import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Logger as NestLogger, type INestApplication, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { Registry } from 'prom-client';
import {
  registerBackupMetrics,
  registerStoreMetrics,
  startEmbeddedFhirServer,
  StoreBackups,
  type FhirSandbox,
} from '@kc/fhir-sandbox';
import { withDevIssuer, type AppConfig } from '@kc/config';
import { FhirClient } from '@kc/fhir';
import { createApiApp, subscribeToEmbeddedStore, WEBHOOK_PATH } from '../apps/api/src';
import { ServiceModule } from './service.module';

export interface RunningService {
  app: INestApplication;
  config: AppConfig;
  /** e.g. http://127.0.0.1:3000 */
  url: string;
  sandbox?: FhirSandbox;
  stop(): Promise<void>;
}

export interface RunningWorker {
  app: INestApplicationContext;
  config: AppConfig;
  /** where /metrics answers when config.workerMetricsPort is set */
  metricsUrl?: string;
  stop(): Promise<void>;
}

/**
 * The composition root: API (+ worker when config.runWorker) and, when no FHIR_BASE_URL is configured, the
 * embedded FHIR sandbox (in a worker thread of its own when compiled): the whole service in one process. Used by
 * `npm start` (main.ts), the end-to-end tests (test/support/test-service.ts) and the benchmarks
 * (bench/bench-support.ts).
 */
export async function startService(config: AppConfig, options: { logger?: false } = {}): Promise<RunningService> {
  let sandbox: FhirSandbox | undefined;
  if (!config.fhirBaseUrl) {
    sandbox = await startEmbeddedFhirServer({
      port: config.fhirSandboxPort,
      dataDir: config.fhirDataDir,
      maxSearchOffset: config.fhirSandboxMaxSearchOffset,
      sync: config.fhirStoreSync,
    });
    config = { ...config, fhirBaseUrl: sandbox.baseUrl };
  }
  if (config.oidc.devIssuer) {
    if (config.production) throw new Error('The development issuer (DEV_ISSUER) is refused in production');
    // The dev issuer's URL (its tokens' iss, its JWKS) must be known before the app is built: the public URL every
    // replica shares, else this one's address (its port picked first).
    if (config.port === 0) config = { ...config, port: await freePort(config.host) };
    const host = ['0.0.0.0', '::'].includes(config.host) ? '127.0.0.1' : config.host;
    config = withDevIssuer(
      config,
      config.publicUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`,
    );
  }
  // The embedded store tells the webhook of its changes (its Subscriptions, below), signed with this secret: the
  // deployment's WEBHOOK_SECRET, else one of this process's own (nothing else posts to the webhook then).
  const subscribe = sandbox && config.fhirSandboxSubscriptions;
  if (subscribe && !config.webhookSecret) config = { ...config, webhookSecret: randomBytes(32).toString('base64url') };
  const storeBackups = backupsOf(sandbox, config);
  const app = await createApiApp(ServiceModule.api(config, { storeBackups }), config, options);
  if (sandbox) registerStoreMetrics(app.get(Registry), sandbox);
  if (storeBackups) registerBackupMetrics(app.get(Registry), storeBackups);
  await app.listen(config.port, config.host);
  storeBackups?.start();
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1').replace('0.0.0.0', '127.0.0.1');
  if (subscribe) await subscribeWebhook(app, `${url}${WEBHOOK_PATH}`, config.webhookSecret!);
  return {
    app,
    config,
    url,
    sandbox,
    stop: async () => {
      await storeBackups?.stop();
      await app.close();
      await sandbox?.close();
    },
  };
}

/**
 * The embedded store's Subscriptions, pointed at this process's webhook (its address may have changed since the
 * last start). Writes made before this are found by the polls, as on any server; so is everything if this fails,
 * which is logged and does not stop the service.
 */
async function subscribeWebhook(app: INestApplication, endpoint: string, secret: string): Promise<void> {
  const logger = new NestLogger('FhirStoreSubscriptions');
  try {
    const changed = await subscribeToEmbeddedStore(app.get(FhirClient), { endpoint, secret });
    logger.log({ msg: 'Subscribed to the embedded FHIR store', ...changed });
  } catch (err) {
    logger.warn({
      msg: 'Not subscribed to the embedded FHIR store: its changes are found by the polls and sweeps alone',
      error: String(err),
    });
  }
}

/** The embedded store's backups (FHIR_BACKUP_*), when this process holds a store and has somewhere to put them. */
function backupsOf(sandbox: FhirSandbox | undefined, config: AppConfig): StoreBackups | undefined {
  const { dir, everyMs, keep } = config.fhirBackup;
  if (!sandbox?.backupTo || !dir) return undefined;
  const logger = new NestLogger('FhirStoreBackups');
  return new StoreBackups(sandbox.backupTo, {
    dir,
    everyMs,
    keep,
    log: (level, entry) => (level === 'error' ? logger.error(entry) : logger.log(entry)),
  });
}

/**
 * The workers alone, no HTTP API (`npm run start:worker`, worker-main.ts; the standalone-worker test): a Nest
 * application context, plus a /metrics server when config.workerMetricsPort is set. Needs config.fhirBaseUrl: the
 * embedded FHIR server lives in the API process. stop() is what SIGTERM does: active jobs finish first.
 */
export async function startWorker(config: AppConfig, options: { logger?: false } = {}): Promise<RunningWorker> {
  if (!config.fhirBaseUrl) throw new Error('the standalone worker needs fhirBaseUrl');
  const app = await NestFactory.createApplicationContext(
    ServiceModule.worker(config),
    options.logger === false ? { logger: false } : { bufferLogs: true },
  );
  if (options.logger !== false) app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  let metrics: http.Server | undefined;
  if (config.workerMetricsPort) {
    const registry = app.get(Registry);
    metrics = http.createServer((req, res) => {
      if (req.url !== '/metrics') return void res.writeHead(404).end();
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve) => metrics!.listen(config.workerMetricsPort, config.host, resolve));
  }
  const port = metrics && (metrics.address() as AddressInfo).port;
  return {
    app,
    config,
    metricsUrl: port ? `http://${config.host}:${port}/metrics` : undefined,
    stop: async () => {
      await new Promise<void>((resolve) => (metrics ? metrics.close(() => resolve()) : resolve()));
      await app.close();
    },
  };
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
