import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FlakyProxy {
  /** Base URL that forwards to the target base URL. */
  baseUrl: string;
  /** While down, every request gets 503 (a FHIR server in maintenance, or a load balancer with no backend). */
  down: boolean;
  /** Requests answered with 503 so far. */
  refused: number;
  /** Delay before forwarding each request (a slow server); 0 = none. */
  delayMs: number;
  /** Requests forwarded so far. */
  forwarded: number;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of the embedded FHIR server that a test can take down and bring back: the only way
 * to make a real server "fail" without losing its in-memory data.
 */
export async function startFlakyProxy(targetBaseUrl: string): Promise<FlakyProxy> {
  const target = new URL(targetBaseUrl);
  const state = { down: false, refused: 0, delayMs: 0, forwarded: 0 };
  const server = http.createServer(async (req, res) => {
    if (state.delayMs) await new Promise((resolve) => setTimeout(resolve, state.delayMs));
    if (state.down) {
      state.refused++;
      res.writeHead(503, { 'content-type': 'application/fhir+json' }).end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient' }] }));
      return;
    }
    state.forwarded++;
    const path = (req.url ?? '/').replace(/^\/fhir\/R4/, '');
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: `${target.pathname}${path}`, headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const proxy = {
    baseUrl: `http://127.0.0.1:${port}/fhir/R4`,
    get down() {
      return state.down;
    },
    set down(value: boolean) {
      state.down = value;
    },
    get refused() {
      return state.refused;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(value: number) {
      state.delayMs = value;
    },
    get forwarded() {
      return state.forwarded;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
