import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/** One HTTP call of a load run: what a client of the service sends. */
export interface LoadRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface LoadResult {
  /** Each call's latency in ms, sorted. */
  latencies: number[];
  wallMs: number;
  /** CPU ms of the whole process meanwhile (the service's thread, the store's, this load's). */
  cpuMs: number;
  /** How many calls answered each status. */
  statuses: Record<number, number>;
}

interface LoadJob {
  requests: LoadRequest[];
  concurrency: number;
}

const THREAD_KIND = 'kc-bench-load';

/**
 * Clients of the service in a thread of their own, as on other machines: run in the service's thread, the clients'
 * fetch machinery took ~15% of the API thread's CPU during the worklist run, and their latencies queued behind it.
 * On 2 cores the load still competes for CPU, with the store's thread. One thread for all of a bench's runs, so its
 * warm-up run warms (JIT, connections) the thread that measures.
 */
export class LoadThread {
  private readonly worker = new Worker(__filename, { workerData: { kind: THREAD_KIND } });

  /** Sends the requests, at most `concurrency` in flight. */
  run(requests: LoadRequest[], concurrency: number): Promise<LoadResult> {
    // Not bench-support's cpuClock: importing it here would load the whole service into the load thread too.
    const cpuStart = process.cpuUsage();
    return new Promise<LoadResult>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.worker.once('error', onError);
      this.worker.once('message', (result: Omit<LoadResult, 'cpuMs'>) => {
        this.worker.off('error', onError);
        const used = process.cpuUsage(cpuStart);
        resolve({ ...result, cpuMs: (used.user + used.system) / 1000 });
      });
      this.worker.postMessage({ requests, concurrency } satisfies LoadJob);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

async function runLoad({ requests, concurrency }: LoadJob): Promise<Omit<LoadResult, 'cpuMs'>> {
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests.length) {
        const { method, url, headers, body } = requests[next++];
        const t = performance.now();
        const res = await fetch(url, { method, headers, body });
        await res.arrayBuffer();
        latencies.push(performance.now() - t);
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
    }),
  );
  return { latencies: latencies.sort((a, b) => a - b), wallMs: performance.now() - start, statuses };
}

if (!isMainThread && (workerData as { kind?: string } | undefined)?.kind === THREAD_KIND)
  parentPort!.on('message', (job: LoadJob) => {
    void runLoad(job).then((result) => parentPort!.postMessage(result));
  });
