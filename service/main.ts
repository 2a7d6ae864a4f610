import { ConfigError, loadConfig } from '@kc/config';
import { createLogger } from '@kc/common';
import { TokenVerifier } from '@kc/auth';
import { exitIfShutdownHangs } from './shutdown-deadline';
import { startService } from './start-service';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`Configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel).child({ context: 'Bootstrap' });
  if (TokenVerifier.usesDevSecret(config.auth)) {
    if (process.env.NODE_ENV === 'production') {
      logger.error('JWT_SECRET or JWT_JWKS_URL must be set in production');
      process.exit(2);
    }
    logger.warn('JWT_SECRET is not set: using the insecure development secret (mint tokens with `npm run token`)');
  }
  exitIfShutdownHangs(config.shutdownTimeoutMs, (message) => logger.error(message));
  const service = await startService(config);
  if (service.config.oidc.devIssuer)
    logger.warn(
      `DEV_ISSUER is on: ${service.config.oidc.issuer} signs clinicians in as demo users (never in production); ` +
        'set OIDC_ISSUER (and JWT_JWKS_URL) for a real identity provider',
    );
  logger.info({
    msg: 'ketamine-careplans listening',
    url: service.url,
    fhirBaseUrl: service.config.fhirBaseUrl,
    embeddedFhir: service.sandbox ? `runs in ${service.sandbox.runsIn}` : false,
    worker: config.runWorker,
    // The days clinicians read and the protocols count: an operator checks it once, before the clinic goes live.
    clinicTimeZone: service.config.clinicTimeZone,
  });
}

void main();
