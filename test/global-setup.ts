import { createConnection } from 'node:net';

/**
 * Runs once before any suite: the end-to-end tests need a real Redis, so say clearly when it is missing
 * rather than letting forty suites time out one by one.
 */
export default async function globalSetup(): Promise<void> {
  const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const reachable = await new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: url.hostname, port: Number(url.port || 6379) });
    socket.setTimeout(2000);
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
  if (!reachable) {
    throw new Error(
      `Redis is not reachable at ${url.host}. Start it (e.g. redis-server --port 6379 --save "" --daemonize yes) or set REDIS_URL.`,
    );
  }
}
