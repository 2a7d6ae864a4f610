import { parentPort, workerData } from 'node:worker_threads';
import { startFhirSandbox, type FhirSandboxOptions } from './fhir-sandbox-server';
import type { SandboxThreadMessage, ServiceToSandboxMessage } from './fhir-sandbox-thread';

/** The worker thread's entry: the embedded FHIR server, listening until the service asks it to close. */
async function main(): Promise<void> {
  const port = parentPort!;
  const sandbox = await startFhirSandbox(workerData as FhirSandboxOptions);
  port.on('message', (message: ServiceToSandboxMessage) => {
    if (message.type === 'stats') {
      const { id } = message;
      // A failure is answered, never left unhandled: an unhandled rejection would end this thread, and the service.
      void (sandbox.storageStats?.() ?? Promise.reject(new Error('no storage stats'))).then(
        (stats) => port.postMessage({ type: 'stats', id, stats } satisfies SandboxThreadMessage),
        (err: unknown) =>
          port.postMessage({ type: 'stats-failed', id, message: String(err) } satisfies SandboxThreadMessage),
      );
    }
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
