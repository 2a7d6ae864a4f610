import { parentPort, workerData } from 'node:worker_threads';
import { startFhirSandbox, type FhirSandbox, type FhirSandboxOptions } from './fhir-sandbox-server';
import type { SandboxThreadMessage, ServiceToSandboxMessage, StoreQuestion } from './fhir-sandbox-thread';
import type { BackupProgress } from './store-backup';

/** The worker thread's entry: the embedded FHIR server, listening until the service asks it to close. */
async function main(): Promise<void> {
  const port = parentPort!;
  const sandbox = await startFhirSandbox(workerData as FhirSandboxOptions);
  port.on('message', (message: ServiceToSandboxMessage) => {
    if (message.type === 'ask') {
      const { id } = message;
      const progress: BackupProgress = (copied, total) =>
        port.postMessage({ type: 'progress', id, copied, total } satisfies SandboxThreadMessage);
      // A failure is answered, never left unhandled: an unhandled rejection would end this thread, and the service.
      void answer(sandbox, message.question, progress).then(
        (value) => port.postMessage({ type: 'answer', id, value } satisfies SandboxThreadMessage),
        (err: unknown) =>
          port.postMessage({
            type: 'refusal',
            id,
            message: err instanceof Error ? err.message : String(err),
          } satisfies SandboxThreadMessage),
      );
    }
    if (message.type === 'close')
      void sandbox.close().then(() => port.postMessage({ type: 'closed' } satisfies SandboxThreadMessage));
  });
  port.postMessage({ type: 'listening', baseUrl: sandbox.baseUrl } satisfies SandboxThreadMessage);
}

function answer(sandbox: FhirSandbox, question: StoreQuestion, progress: BackupProgress) {
  const answered = question.kind === 'stats' ? sandbox.storageStats?.() : sandbox.backupTo?.(question.file, progress);
  return answered ?? Promise.reject(new Error(`the store cannot answer ${question.kind}`));
}

main().catch((err: unknown) =>
  parentPort!.postMessage({
    type: 'failed',
    message: err instanceof Error ? err.message : String(err),
  } satisfies SandboxThreadMessage),
);
