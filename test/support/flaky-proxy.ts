import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';

export interface FlakyProxy {
  /** Base URL that forwards to the target base URL. */
  baseUrl: string;
  /** While down, every request gets 503 (a FHIR server in maintenance, or a load balancer with no backend). */
  down: boolean;
  /** Requests answered with 503 so far. */
  refused: number;
  /** Delay before forwarding each request (a slow server); 0 = none. */
  delayMs: number;
  /**
   * Delay of the answer after the server has done the work (slow network or overloaded proxy): the client may
   * give up on a write that did land. Per request, by method and the Bundle type posted (`batch`: reads,
   * `transaction`: writes) and the body sent; 0 = none.
   */
  answerDelayMs: (method: string, bundleType?: string, body?: string) => number;
  /** Requests forwarded so far. */
  forwarded: number;
  /**
   * Runs before a request is forwarded, which waits for it: another writer's change landing between a reader's read
   * and its write (a race made deterministic).
   */
  beforeForward: (method: string, path: string, body: string) => Promise<void> | void;
  /** Answers a request itself instead of forwarding it (a server quirk or a hostile answer); undefined = forward. */
  intercept: (method: string, path: string, body: string) => { status: number; body: unknown } | undefined;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of the embedded FHIR server that a test can take down, slow down and bring back: the
 * only way to make a real server "fail" without losing its in-memory data.
 */
export async function startFlakyProxy(targetBaseUrl: string): Promise<FlakyProxy> {
  const target = new URL(targetBaseUrl);
  const server = http.createServer((req, res) => void forward(req, res));
  async function forward(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (proxy.delayMs) await sleep(proxy.delayMs);
    if (proxy.down) {
      proxy.refused++;
      res
        .writeHead(503, { 'content-type': 'application/fhir+json' })
        .end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient' }] }));
      return;
    }
    const requestBody: Buffer[] = [];
    for await (const chunk of req) requestBody.push(chunk as Buffer);
    const sent = Buffer.concat(requestBody);
    const own = proxy.intercept(req.method ?? 'GET', req.url ?? '/', sent.toString('utf8'));
    if (own) {
      res.writeHead(own.status, { 'content-type': 'application/fhir+json' }).end(JSON.stringify(own.body));
      return;
    }
    await proxy.beforeForward(req.method ?? 'GET', req.url ?? '/', sent.toString('utf8'));
    proxy.forwarded++;
    const answerDelay = proxy.answerDelayMs(req.method ?? 'GET', bundleTypeOf(sent), sent.toString('utf8'));
    const path = (req.url ?? '/').replace(/^\/fhir\/R4/, '');
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: `${target.pathname}${path}`,
        headers: { ...req.headers, host: target.host },
      },
      (answer) =>
        void (async () => {
          const body: Buffer[] = [];
          for await (const chunk of answer) body.push(chunk as Buffer);
          if (answerDelay) await sleep(answerDelay);
          if (res.destroyed) return; // the client gave up
          res.writeHead(answer.statusCode ?? 502, answer.headers).end(Buffer.concat(body));
        })(),
    );
    upstream.on('error', () => !res.destroyed && res.writeHead(502).end());
    upstream.end(sent);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const proxy: FlakyProxy = {
    baseUrl: `http://127.0.0.1:${port}/fhir/R4`,
    down: false,
    refused: 0,
    delayMs: 0,
    answerDelayMs: () => 0,
    forwarded: 0,
    intercept: () => undefined,
    beforeForward: () => undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return proxy;
}

/**
 * Holds the first request `matches` picks back (the others pass): `reached` resolves when it arrives, and it is
 * forwarded once `release()` is called. A writer paused between its read and its write, so that something else lands
 * there (a race made deterministic).
 */
export function holdFirst(
  proxy: FlakyProxy,
  matches: (method: string, path: string, body: string) => boolean,
): { reached: Promise<void>; release: () => void } {
  let arrived: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (arrived = resolve));
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  proxy.beforeForward = async (method, path, body) => {
    if (!matches(method, path, body)) return;
    proxy.beforeForward = () => undefined;
    arrived();
    await released;
  };
  return { reached, release };
}

/** Unref'd: an answer held back past a test's end must not keep the test process alive. */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

function bundleTypeOf(body: Buffer): string | undefined {
  if (!body.length) return undefined;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { resourceType?: string; type?: string };
    return parsed.resourceType === 'Bundle' ? parsed.type : undefined;
  } catch {
    return undefined;
  }
}

/** The whole service talking to its own embedded FHIR server through a FlakyProxy the test controls. */
export interface ServiceBehindProxy<S> {
  service: S;
  proxy: FlakyProxy;
  sandbox: FhirSandbox;
  stop(): Promise<void>;
}

export async function startBehindProxy<S extends { stop(): Promise<void> }>(
  start: (fhirBaseUrl: string) => Promise<S>,
): Promise<ServiceBehindProxy<S>> {
  const sandbox = await startFhirSandbox();
  const proxy = await startFlakyProxy(sandbox.baseUrl);
  const service = await start(proxy.baseUrl);
  return {
    service,
    proxy,
    sandbox,
    stop: async () => {
      await service.stop();
      await proxy.close();
      await sandbox.close();
    },
  };
}
