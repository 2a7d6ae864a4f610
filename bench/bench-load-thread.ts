import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { httpFetch } from '../libs/fhir/src/http-fetch';
import { cpuClock, runConcurrently } from './bench-timing';

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
 * On 2 cores the load still competes for CPU, with the store's thread, so it sends with the same keep-alive
 * transport as the raw baselines' FHIR client (httpFetch): with the global fetch, the clients cost ~0.7 ms of CPU
 * per call more than the baselines' did, charged to the service. One thread for all of a bench's runs, so its
 * warm-up run warms (JIT, connections) the thread that measures.
 */
export class LoadThread {
  private readonly worker = new Worker(__filename, { workerData: { kind: THREAD_KIND } });

  /** Sends the requests, at most `concurrency` in flight. */
  run(requests: LoadRequest[], concurrency: number): Promise<LoadResult> {
    const cpu = cpuClock();
    return new Promise<LoadResult>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.worker.once('error', onError);
      this.worker.once('message', (result: Omit<LoadResult, 'cpuMs'>) => {
        this.worker.off('error', onError);
        resolve({ ...result, cpuMs: cpu() });
      });
      this.worker.postMessage({ requests, concurrency } satisfies LoadJob);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** A connection per client: the benches run up to 100 at once. */
const send = httpFetch({ maxSockets: 256 });

async function runLoad({ requests, concurrency }: LoadJob): Promise<Omit<LoadResult, 'cpuMs'>> {
  const statuses: Record<number, number> = {};
  const { latencies, wallMs } = await runConcurrently(requests.length, concurrency, async (i) => {
    const { method, url, headers, body } = requests[i];
    const res = await send(url, { method, headers, body });
    await res.text();
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
  });
  return { latencies, wallMs, statuses };
}

if (!isMainThread && (workerData as { kind?: string } | undefined)?.kind === THREAD_KIND)
  parentPort!.on('message', (job: LoadJob) => {
    void runLoad(job).then((result) => parentPort!.postMessage(result));
  });
