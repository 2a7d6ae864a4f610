import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { startFhirSandbox, type FhirSandbox, type FhirSandboxOptions } from './fhir-sandbox-server';
import type { StoreStats } from './sqlite-repository';

/** What the store's thread tells the service. */
export type SandboxThreadMessage =
  | { type: 'listening'; baseUrl: string }
  | { type: 'failed'; message: string }
  | { type: 'stats'; id: number; stats: StoreStats }
  | { type: 'stats-failed'; id: number; message: string }
  | { type: 'closed' };

/** What the service asks the store's thread. */
export type ServiceToSandboxMessage = { type: 'stats'; id: number } | { type: 'close' };

/** The compiled worker entry, beside this file in dist/. */
const WORKER_ENTRY = path.join(__dirname, 'fhir-sandbox-worker.js');

/**
 * The embedded FHIR server for the service: in a worker thread of its own when the compiled entry is there
 * (`npm start`, the benchmarks, the smoke start), else in this thread (jest runs the TypeScript sources, which a
 * worker thread cannot load). In its own thread the store's work (SQLite, Medplum's router, its HTTP) runs on
 * the second core while the service handles requests and jobs on the first: the service still talks to it
 * over real HTTP, as to any FHIR server.
 */
export function startEmbeddedFhirServer(options: Omit<FhirSandboxOptions, 'repository'>): Promise<FhirSandbox> {
  return fs.existsSync(WORKER_ENTRY) ? startFhirSandboxThread(options) : startFhirSandbox(options);
}

/**
 * Starts the sandbox in a worker thread; resolves once it listens. A thread that dies while the service runs
 * takes the process down with it: a service whose FHIR store is gone can only fail every request.
 * `entry` is the thread's script (tests pass one that dies on purpose).
 */
export function startFhirSandboxThread(
  options: Omit<FhirSandboxOptions, 'repository'>,
  entry = WORKER_ENTRY,
): Promise<FhirSandbox> {
  const worker = new Worker(entry, { workerData: options });
  let closing = false;
  return new Promise<FhirSandbox>((resolve, reject) => {
    const onStartup = (message: SandboxThreadMessage) => {
      if (message.type === 'failed') {
        void worker.terminate();
        return reject(new Error(message.message));
      }
      if (message.type !== 'listening') return;
      worker.off('message', onStartup);
      worker.on('exit', (code) => {
        if (!closing)
          setImmediate(() => {
            throw new Error(`the embedded FHIR server's thread stopped (exit code ${code})`);
          });
      });
      // Answers to storageStats, by request id.
      const statsWaiting = new Map<number, { answer: (stats: StoreStats) => void; refuse: (err: Error) => void }>();
      let nextStatsId = 0;
      let onClosed: (() => void) | undefined;
      worker.on('message', (reply: SandboxThreadMessage) => {
        if (reply.type === 'stats') statsWaiting.get(reply.id)?.answer(reply.stats);
        if (reply.type === 'stats-failed') statsWaiting.get(reply.id)?.refuse(new Error(reply.message));
        if (reply.type === 'stats' || reply.type === 'stats-failed') statsWaiting.delete(reply.id);
        if (reply.type === 'closed') onClosed?.();
      });
      resolve({
        baseUrl: message.baseUrl,
        runsIn: 'a worker thread',
        cpuMs: async () => {
          const { user, system } = await worker.cpuUsage();
          return (user + system) / 1000;
        },
        storageStats: () =>
          new Promise<StoreStats>((answer, refuse) => {
            if (closing) return refuse(new Error('the embedded FHIR server is closing'));
            const id = nextStatsId++;
            statsWaiting.set(id, { answer, refuse });
            worker.postMessage({ type: 'stats', id } satisfies ServiceToSandboxMessage);
          }),
        close: () => {
          if (closing) return Promise.resolve();
          closing = true;
          return new Promise<void>((closed) => {
            onClosed = () => void worker.terminate().then(() => closed());
            worker.postMessage({ type: 'close' } satisfies ServiceToSandboxMessage);
          });
        },
      });
    };
    worker.on('message', onStartup);
    worker.once('error', (err) => {
      if (!closing) reject(err instanceof Error ? err : new Error(String(err)));
    });
  });
}
