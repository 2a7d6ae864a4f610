import { createLogger } from '@kc/common';
import { ConfigError, loadConfig } from '@kc/config';
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
  await startWorker(config);
  createLogger(config.logLevel).info({ context: 'Bootstrap', fhirBaseUrl: config.fhirBaseUrl }, 'worker started');
}

void main();
