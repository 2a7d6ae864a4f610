import type { INestApplication } from '@nestjs/common';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import type { AppConfig } from '@kc/config';
import { JsonLogger } from '@kc/common';
import { createApiApp } from './create-api-app';

export interface RunningService {
  app: INestApplication;
  config: AppConfig;
  /** e.g. http://127.0.0.1:3000 */
  url: string;
  sandbox?: FhirSandbox;
  stop(): Promise<void>;
}

/**
 * API (+ worker when config.runWorker) and, when no FHIR_BASE_URL is configured, the embedded FHIR
 * sandbox: the whole service in one process, for quick start and end-to-end tests.
 */
export async function startService(
  config: AppConfig,
  options: { logger?: JsonLogger | false } = {},
): Promise<RunningService> {
  let sandbox: FhirSandbox | undefined;
  if (!config.fhirBaseUrl) {
    sandbox = await startFhirSandbox({ port: config.fhirSandboxPort, dataDir: config.fhirDataDir });
    config = { ...config, fhirBaseUrl: sandbox.baseUrl };
  }
  const app = await createApiApp(config, options);
  await app.listen(config.port, config.host);
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1').replace('0.0.0.0', '127.0.0.1');
  return {
    app,
    config,
    url,
    sandbox,
    stop: async () => {
      await app.close();
      await sandbox?.close();
    },
  };
}
