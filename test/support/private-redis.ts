import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { createConnection } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './service-process';
import { redisTlsSettings, type TlsFiles } from './tls-certificates';

export interface PrivateRedis {
  url: string;
  port: number;
  /** SIGKILL the server (what a crash or an OOM kill does); resolves when it is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory (its AOF, if it has one, is replayed). */
  start(): Promise<void>;
  /** Stops it for good and removes its data directory. */
  close(): Promise<void>;
}

/**
 * A redis-server of the test's own, on a free port, that the test may kill and restart: the shared Redis is never
 * touched. `appendonly` as an operator would set it (docker-compose.yml ships AOF), or off like the default here.
 */
export async function startPrivateRedis(options: {
  appendonly: boolean;
  args?: string[];
  /** Serve TLS only (no plain port), with this certificate. */
  tls?: TlsFiles;
}): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-redis-'));
  let child: ChildProcess | undefined;
  let stderr = '';
  const start = async () => {
    child = spawn(
      'redis-server',
      [
        ...(options.tls
          ? redisTlsSettings(port, options.tls).flatMap(([name, value]) => [`--${name}`, value])
          : ['--port', String(port)]),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        options.appendonly ? 'yes' : 'no',
        '--appendfsync',
        'always',
        '--maxmemory-policy',
        'noeviction',
        ...(options.args ?? []),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.once('error', (err) => (stderr += String(err)));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 10_000;
    while (!(await answers(port))) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`could not start a private redis-server (is Redis installed?): ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const kill = async () => {
    const running = child;
    // Gone already: it exited, or a signal ended it (a killed child keeps exitCode null).
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url: `${options.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    port,
    kill,
    start,
    close: async () => {
      await kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface PrivateSentinel {
  port: number;
  /** Stops it for good and removes its config. */
  close(): Promise<void>;
}

/**
 * A Redis Sentinel of the test's own (redis-server in sentinel mode) watching the master on `masterPort` as `name`,
 * alone in its quorum, quick to call the master down (`downAfterMs`) and fail over to a replica.
 */
export async function startPrivateSentinel(options: {
  masterPort: number;
  name: string;
  downAfterMs: number;
  /** Serve TLS only, and reach the master and replicas over TLS. */
  tls?: TlsFiles;
}): Promise<PrivateSentinel> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-sentinel-'));
  const conf = path.join(dir, 'sentinel.conf');
  // Sentinel rewrites its config file as it learns the replicas and the failovers: it must be its own.
  fs.writeFileSync(
    conf,
    [
      ...(options.tls ? redisTlsSettings(port, options.tls).map((setting) => setting.join(' ')) : [`port ${port}`]),
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${options.name} 127.0.0.1 ${options.masterPort} 1`,
      `sentinel down-after-milliseconds ${options.name} ${options.downAfterMs}`,
      `sentinel failover-timeout ${options.name} 10000`,
      '',
    ].join('\n'),
  );
  let stderr = '';
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.once('error', (err) => (stderr += String(err)));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + 10_000;
  while (!(await answers(port))) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`could not start a private Redis Sentinel (is Redis installed?): ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    port,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGKILL');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
