/**
 * Exits when a graceful shutdown (SIGTERM, SIGINT) has not finished in time. BullMQ's Worker.close() can wait for
 * ever on a Redis client stuck reconnecting (after a Redis restart: taskforcesh/bullmq#4656), and a process that
 * ignores SIGTERM is killed later by its supervisor anyway, in the middle of whatever it was doing, or never by a
 * terminal. Nothing is lost by going: a job still active is taken up again once its lock expires (every write the
 * service makes is safe to repeat), and the embedded store's transactions are all or nothing.
 */
export function exitIfShutdownHangs(timeoutMs: number, log: (message: string) => void): void {
  const arm = () =>
    setTimeout(() => {
      log(`shutdown did not finish within ${timeoutMs} ms (SHUTDOWN_TIMEOUT_MS); exiting`);
      process.exit(1);
    }, timeoutMs).unref();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, arm);
}
