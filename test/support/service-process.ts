import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

export interface ServiceProcess {
  url: string;
  pid: number;
  /** SIGKILL: no shutdown hooks, requests in flight cut off. Resolves when the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A free port below the range the kernel hands out to `listen(0)` and to outgoing connections
 * (/proc/sys/net/ipv4/ip_local_port_range), for a server a test stops and starts again on its port (a private Redis):
 * no other test's server or connection is given it in between. Session 51: CI failed once on a port freed by a test
 * and taken meanwhile (a mail server's, since kept open).
 */
export async function freeRestartablePort(): Promise<number> {
  const lowestEphemeral = Number(readIfExists('/proc/sys/net/ipv4/ip_local_port_range')?.trim().split(/\s+/)[0]);
  const below = Number.isInteger(lowestEphemeral) && lowestEphemeral > 21_000 ? lowestEphemeral : 32_768;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * (below - 20_000));
    if (await canListen(port)) return port;
  }
  return freePort();
}

function canListen(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The service (service/main.ts, as `npm start` runs it) in a process of its own, from the TypeScript sources, so a
 * test can kill it like an operator pulling the plug. `env` is its environment on top of this one's.
 */
export async function startServiceProcess(env: Record<string, string>): Promise<ServiceProcess> {
  // A port freePort() found may be taken by another test's service before this one binds it: then on another port.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(env);
    } catch (err) {
      if (env.PORT || attempt >= 3 || !String(err).includes('EADDRINUSE')) throw err;
    }
  }
}

async function startOnce(env: Record<string, string>): Promise<ServiceProcess> {
  const port = env.PORT ?? String(await freePort());
  const child: ChildProcess = spawn(
    process.execPath,
    ['-r', path.join(__dirname, 'ts-register.cjs'), path.join(ROOT, 'service/main.ts')],
    {
      cwd: ROOT,
      // AuditEvents in memory unless the test gives a spool directory: not in the checkout's data/.
      env: { ...process.env, LOG_LEVEL: 'error', AUDIT_SPOOL_DIR: ':memory:', ...env, PORT: port, HOST: '127.0.0.1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service process exited at start: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the service process did not answer /health/live within 60 s: ${stderr}`);
    }
    const live = await fetch(`${url}/health/live`).catch(() => undefined);
    const answer = live?.ok ? ((await live.json().catch(() => ({}))) as { pid?: number }) : undefined;
    // Our process, not another test's service that took the port between freePort() and this one's bind (its
    // tokens would all be refused): that one's pid differs, and ours then exits at start (the check above).
    if (answer?.pid === child.pid) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    pid: child.pid!,
    kill: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
