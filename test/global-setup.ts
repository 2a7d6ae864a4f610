import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import * as path from 'node:path';

/** Set when this run started its own redis-server; global-teardown.ts stops it by this pid. */
export const PRIVATE_REDIS_PID = 'KC_TEST_PRIVATE_REDIS_PID';

/**
 * Runs once before any suite: the end-to-end tests need a real Redis. When none answers on REDIS_URL (default
 * 127.0.0.1:6379), start a private redis-server on a free port for this run if the binary is installed, and
 * point REDIS_URL at it (the test workers inherit the environment); otherwise fail at once, saying what to
 * install, rather than letting every suite time out one by one.
 */
export default async function globalSetup(): Promise<void> {
  // Redis errors name the code that sent their command (docs/known-limits.md, session 39: the Sentinel test's rare
  // "Connection is closed."). Set before the workers start: they inherit it.
  process.env.REDIS_COMMAND_STACKS ??= 'true';
  const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  if (await answers(url.hostname, Number(url.port || 6379))) return;
  const binary = findOnPath('redis-server');
  if (!binary) {
    throw new Error(
      `Redis is not reachable at ${url.host} and no redis-server is installed to start one for the tests. ` +
        'Install Redis (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), or start one and set REDIS_URL.',
    );
  }
  const port = await freePort();
  const child = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.unref();
  (child.stderr as Socket).unref(); // a pipe: without this it would hold the run open
  // Safety net for a run that dies before its teardown: never leave the private server behind.
  process.once('exit', () => {
    if (child.exitCode === null) child.kill();
  });
  const deadline = Date.now() + 10_000;
  while (!(await answers('127.0.0.1', port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      throw new Error(
        `Redis is not reachable at ${url.host}, and starting ${binary} on port ${port} failed: ${stderr}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
  process.env[PRIVATE_REDIS_PID] = String(child.pid);
  process.stderr.write(
    `\nRedis is not reachable at ${url.host}: started a private redis-server for this run on port ${port} (pid ${child.pid}).\n`,
  );
}

function answers(host: string, port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = createConnection({ host, port });
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
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
