import { loadConfig } from '@kc/config';
import { startFhirSandbox } from '@kc/fhir-sandbox';

/** Runs the sandbox on its own, e.g. to point a second service instance or a FHIR tool at it. */
async function main(): Promise<void> {
  const { fhirDataDir, fhirSandboxMaxSearchOffset, fhirStoreSync } = loadConfig();
  const sandbox = await startFhirSandbox({
    port: Number(process.env.FHIR_SANDBOX_PORT ?? 8103),
    dataDir: fhirDataDir,
    maxSearchOffset: fhirSandboxMaxSearchOffset,
    sync: fhirStoreSync,
  });
  process.stdout.write(
    JSON.stringify({ level: 'info', msg: 'FHIR sandbox listening', baseUrl: sandbox.baseUrl, dataDir: fhirDataDir }) +
      '\n',
  );
  const stop = () => void sandbox.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

void main();
