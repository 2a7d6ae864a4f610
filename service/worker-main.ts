import { createLogger } from '@kc/common';
import { ConfigError, loadConfig } from '@kc/config';
import { exitIfShutdownHangs } from './shutdown-deadline';
import { startWorker } from './start-service';

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
  const logger = createLogger(config.logLevel).child({ context: 'Bootstrap' });
  exitIfShutdownHangs(config.shutdownTimeoutMs, (message) => logger.error(message));
  await startWorker(config);
  logger.info({ fhirBaseUrl: config.fhirBaseUrl, clinicTimeZone: config.clinicTimeZone }, 'worker started');
}

void main();
