import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { startFhirSandbox, type FhirSandbox, type FhirSandboxOptions } from './fhir-sandbox-server';
import type { StoreStats } from './sqlite-repository';
import type { BackupProgress, StoreBackup } from './store-backup';

/** What the service asks of the store in its thread (each answered by id). */
export type StoreQuestion = { kind: 'stats' } | { kind: 'backup'; file: string };

/** What the store's thread tells the service. */
export type SandboxThreadMessage =
  | { type: 'listening'; baseUrl: string }
  | { type: 'failed'; message: string }
  | { type: 'answer'; id: number; value: StoreStats | StoreBackup }
  | { type: 'refusal'; id: number; message: string }
  /** A backup under way: pages copied so far, of the total. */
  | { type: 'progress'; id: number; copied: number; total: number }
  | { type: 'closed' };

/** What the service asks the store's thread. */
export type ServiceToSandboxMessage = { type: 'ask'; id: number; question: StoreQuestion } | { type: 'close' };

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
      // Questions waiting for their answer, by id.
      const waiting = new Map<
        number,
        { answer: (value: never) => void; refuse: (err: Error) => void; onProgress?: BackupProgress }
      >();
      let nextId = 0;
      let onClosed: (() => void) | undefined;
      worker.on('message', (reply: SandboxThreadMessage) => {
        if (reply.type === 'answer') waiting.get(reply.id)?.answer(reply.value as never);
        if (reply.type === 'refusal') waiting.get(reply.id)?.refuse(new Error(reply.message));
        if (reply.type === 'answer' || reply.type === 'refusal') waiting.delete(reply.id);
        if (reply.type === 'progress') waiting.get(reply.id)?.onProgress?.(reply.copied, reply.total);
        if (reply.type === 'closed') onClosed?.();
      });
      const ask = <T>(question: StoreQuestion, onProgress?: BackupProgress) =>
        new Promise<T>((answer, refuse) => {
          if (closing) return refuse(new Error('the embedded FHIR server is closing'));
          const id = nextId++;
          waiting.set(id, { answer, refuse, onProgress });
          worker.postMessage({ type: 'ask', id, question } satisfies ServiceToSandboxMessage);
        });
      resolve({
        baseUrl: message.baseUrl,
        runsIn: 'a worker thread',
        cpuMs: async () => {
          const { user, system } = await worker.cpuUsage();
          return (user + system) / 1000;
        },
        storageStats: () => ask<StoreStats>({ kind: 'stats' }),
        backupTo: (file, onProgress) => ask<StoreBackup>({ kind: 'backup', file }, onProgress),
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
