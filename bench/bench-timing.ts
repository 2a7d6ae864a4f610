/**
 * Timing for the benchmarks, with nothing of the service imported: the load thread (bench-load-thread.ts) uses it
 * without loading the service into its thread.
 */

/**
 * Runs `total` calls with at most `concurrency` in flight; returns each call's latency, sorted, and the CPU time the
 * process (every thread: the service, its embedded store, the bench's clients) spent meanwhile.
 */
export async function runConcurrently(
  total: number,
  concurrency: number,
  call: (i: number) => Promise<unknown>,
): Promise<{ latencies: number[]; wallMs: number; cpuMs: number }> {
  const latencies: number[] = [];
  let next = 0;
  const cpu = cpuClock();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const t = performance.now();
        await call(i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { latencies: latencies.sort((a, b) => a - b), wallMs: performance.now() - start, cpuMs: cpu() };
}

/**
 * CPU milliseconds the process spends from now until the returned function is called. On a shared 2-core VM the
 * rates swing +-20% from run to run; CPU per operation swings far less, so it tells two builds apart.
 */
export function cpuClock(): () => number {
  const start = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(start);
    return (used.user + used.system) / 1000;
  };
}
