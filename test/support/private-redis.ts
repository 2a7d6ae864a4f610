import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { createConnection } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from './clinic';
import { freeRestartablePort } from './service-process';
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
  const port = await freeRestartablePort();
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
  const port = await freeRestartablePort();
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

export interface PrivateSentinelSet {
  master: PrivateRedis;
  replica: PrivateRedis;
  sentinel: PrivateSentinel;
  /** The port of the master the sentinel names now (the replica's after a failover). */
  masterPort(): Promise<number>;
  /** SIGKILLs the master and waits until the sentinel has promoted the replica. */
  failOver(): Promise<void>;
  /** Stops all three for good. */
  close(): Promise<void>;
}

/**
 * A master, its replica and a sentinel watching them as `name`, ready to fail over (the sentinel knows the replica);
 * all three serve TLS only when `tls` is given.
 */
export async function startPrivateSentinelSet(options: { name: string; tls?: TlsFiles }): Promise<PrivateSentinelSet> {
  const { name, tls } = options;
  const started: { close(): Promise<void> }[] = [];
  let admin: Redis | undefined;
  const close = async () => {
    admin?.disconnect();
    for (const server of started.reverse()) await server.close();
  };
  try {
    const master = await startPrivateRedis({ appendonly: false, tls });
    started.push(master);
    const replica = await startPrivateRedis({
      appendonly: false,
      tls,
      args: ['--replicaof', '127.0.0.1', String(master.port)],
    });
    started.push(replica);
    const sentinel = await startPrivateSentinel({ masterPort: master.port, name, downAfterMs: 1000, tls });
    started.push(sentinel);
    const client = new Redis({
      port: sentinel.port,
      host: '127.0.0.1',
      tls: tls ? { ca: fs.readFileSync(tls.ca, 'utf8') } : undefined,
      lazyConnect: true,
    });
    admin = client;
    await client.connect();
    // The sentinel must know the replica before the master can be failed over to it.
    await waitFor(
      async () => ((await client.call('SENTINEL', 'replicas', name)) as unknown[]).length > 0,
      'the sentinel to discover the replica',
      20_000,
    );
    const masterPort = async () =>
      Number(((await client.call('SENTINEL', 'get-master-addr-by-name', name)) as string[])[1]);
    const failOver = async () => {
      await master.kill();
      // Asked again when the sentinel's connection drops mid-failover ("Connection is closed."; ioredis reconnects):
      // a clean-clone CI run of session 38 failed on it under the full suite's load.
      await waitFor(
        async () => (await masterPort().catch(() => undefined)) === replica.port,
        'the sentinel to promote the replica',
        30_000,
      );
    };
    return { master, replica, sentinel, masterPort, failOver, close };
  } catch (err) {
    await close();
    throw err;
  }
}
