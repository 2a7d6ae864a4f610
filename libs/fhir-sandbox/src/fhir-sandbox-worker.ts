import { parentPort, workerData } from 'node:worker_threads';
import { startFhirSandbox, type FhirSandboxOptions } from './fhir-sandbox-server';
import type { SandboxThreadMessage, ServiceToSandboxMessage } from './fhir-sandbox-thread';

/** The worker thread's entry: the embedded FHIR server, listening until the service asks it to close. */
async function main(): Promise<void> {
  const port = parentPort!;
  const sandbox = await startFhirSandbox(workerData as FhirSandboxOptions);
  port.on('message', (message: ServiceToSandboxMessage) => {
    if (message.type === 'stats' && sandbox.storageStats)
      void sandbox
        .storageStats()
        .then((stats) => port.postMessage({ type: 'stats', id: message.id, stats } satisfies SandboxThreadMessage));
    if (message.type === 'close')
      void sandbox.close().then(() => port.postMessage({ type: 'closed' } satisfies SandboxThreadMessage));
  });
  port.postMessage({ type: 'listening', baseUrl: sandbox.baseUrl } satisfies SandboxThreadMessage);
}

main().catch((err: unknown) =>
  parentPort!.postMessage({
    type: 'failed',
    message: err instanceof Error ? err.message : String(err),
  } satisfies SandboxThreadMessage),
);
