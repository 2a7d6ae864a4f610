import * as http from 'node:http';
import { NestFactory } from '@nestjs/core';
import { Registry } from 'prom-client';
import { JsonLogger } from '@kc/common';
import { ConfigError, loadConfig } from '@kc/config';
import { WorkerAppModule } from './worker-app.module';

/** The worker alone, for deployments that scale it apart from the API. Needs FHIR_BASE_URL. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`Configuration error: ${err.message}\n`);
    process.exit(2);
  }
  if (!config.fhirBaseUrl) {
    process.stderr.write(
      'Configuration error: the standalone worker needs FHIR_BASE_URL (the embedded FHIR server lives in the API process)\n',
    );
    process.exit(2);
  }
  const logger = new JsonLogger(config.logLevel);
  const app = await NestFactory.createApplicationContext(WorkerAppModule.forRoot(config), { logger });
  app.enableShutdownHooks();
  if (config.workerMetricsPort) {
    const registry = app.get(Registry);
    http
      .createServer(async (req, res) => {
        if (req.url !== '/metrics') return res.writeHead(404).end();
        res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
      })
      .listen(config.workerMetricsPort, config.host);
  }
  logger.log({ msg: 'worker started', fhirBaseUrl: config.fhirBaseUrl }, 'Bootstrap');
}

void main();
