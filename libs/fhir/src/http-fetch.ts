import * as http from 'node:http';
import * as https from 'node:https';
import type * as net from 'node:net';

/**
 * What the FHIR client sends through: fetch's signature, narrowed to what it uses, so that both the global fetch
 * (tests, the OAuth2 token endpoint) and httpFetch fit.
 */
export type HttpFetch = (input: string | URL, init?: HttpFetchInit) => Promise<HttpAnswer>;

export interface HttpFetchInit {
  method?: string;
  headers?: Record<string, string> | Headers | [string, string][];
  body?: string | URLSearchParams;
  signal?: AbortSignal;
}

/** The part of fetch's Response the FHIR client reads. */
export interface HttpAnswer {
  readonly status: number;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };
  /** Null when the answer has no body; cancel() drops an unread one. */
  readonly body: { cancel(): Promise<void> } | null;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

/**
 * `fetch` over node:http(s) with keep-alive agents, for the FHIR client's small JSON exchanges. Measured on the
 * 2-core machine, a loopback POST answered by node:http: 2,400-4,200 req/s through the global fetch (undici's
 * WHATWG machinery: streams, request/response objects, abort plumbing), 8,500 through this one. Every FHIR
 * request the service makes goes through here, so this is a share of every event, approval and $apply.
 *
 * Only what the FHIR client and its token fetch use: a string or URL target, method, plain-object headers, a
 * string (or URLSearchParams) body, and an AbortSignal (the per-request timeout); network errors reject like
 * fetch's. The answer is the body read once into a Buffer, decoded once when asked: a WHATWG Response built around
 * it copied the bytes again and wrapped them in a stream (with Buffer.concat, ~5% of the service thread's CPU per
 * follow-up event in a steady-state profile).
 */
export function httpFetch(options: { maxSockets?: number } = {}): HttpFetch {
  // Agents of its own when asked for another connection limit (a load generator's hundred clients).
  const agents = options.maxSockets ? newAgents(options.maxSockets) : sharedAgents();
  return (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input.href);
    const body = requestBody(init?.body);
    const headers: Record<string, string> = { ...toHeaderRecord(init?.headers) };
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const signal = init?.signal ?? undefined;
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:')
      return Promise.reject(new TypeError(`httpFetch: unsupported protocol ${url.protocol}`));
    const method = init?.method ?? 'GET';
    const send = (retryStale: boolean): Promise<HttpAnswer> =>
      new Promise<HttpAnswer>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason as Error);
        const request = (secure ? https : http).request(
          url,
          { method, headers, agent: secure ? agents.https : agents.http },
          (res) => {
            const socket = res.socket; // Detached from the answer by its end, as the agent takes it back.
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('error', reject);
            res.on('end', () => {
              signal?.removeEventListener('abort', onAbort);
              lastExchange.set(socket, { at: Date.now(), limit: idleLimit(res.headers['keep-alive']) });
              const status = res.statusCode ?? 502;
              const noBody = status === 204 || status === 304 || method === 'HEAD';
              const bytes = noBody ? null : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
              resolve(new BufferedAnswer(status, bytes, res.headers));
            });
          },
        );
        // A pooled connection idle past its limit is dropped before anything is written on it, and the request goes
        // on another: the server may be closing it, and a POST that fails there cannot be sent again. (Node's agent
        // closes none itself without a `timeout`, and one with a timeout re-arms a timer at every read and write:
        // 3-8% of this transport's rate, measured. Its timer would also be late when the event loop stalls.)
        let droppedOverdue = false;
        if (request.reusedSocket)
          request.once('socket', (socket: net.Socket) => {
            if (!idleOverdue(socket)) return;
            droppedOverdue = true;
            socket.destroy();
          });
        const onAbort = () => request.destroy(signal!.reason as Error);
        signal?.addEventListener('abort', onAbort, { once: true });
        request.on('error', (err: NodeJS.ErrnoException) => {
          signal?.removeEventListener('abort', onAbort);
          if (droppedOverdue && !signal?.aborted) return void send(retryStale).then(resolve, reject);
          // A kept-alive connection the server closed while idle (a race with its keep-alive timeout, or a proxy
          // that drops idle connections without saying so): an idempotent request is sent once more on a new one,
          // as Node's documentation advises. A POST is not: it may have reached the server.
          if (retryStale && request.reusedSocket && STALE_SOCKET.has(err.code ?? '') && !signal?.aborted)
            return void send(false).then(resolve, reject);
          reject(signal?.aborted ? (signal.reason as Error) : new TypeError('fetch failed', { cause: err }));
        });
        request.end(body);
      });
    return send(IDEMPOTENT.has(method.toUpperCase()));
  };
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
const STALE_SOCKET = new Set(['ECONNRESET', 'EPIPE']);

let shared: { http: http.Agent; https: https.Agent } | undefined;

/** One pair of keep-alive agents per process: connections to the FHIR server are reused across clients. */
function sharedAgents(): { http: http.Agent; https: https.Agent } {
  shared ??= newAgents(64);
  return shared;
}

/**
 * How long a pooled connection may stay idle before a request is sent on it, or less when the server's
 * `Keep-Alive: timeout=N` hint asks for less (N − 1 s, as Node's agent reads it). Below the common server defaults
 * (Node and Apache 5 s, Jetty 30 s, load balancers 60 s): a request sent as the server closes an idle connection
 * fails with ECONNRESET.
 */
const IDLE_CONNECTION_MS = 4000;

/** When each kept-alive connection last finished an exchange, and how long it may then stay idle. */
const lastExchange = new WeakMap<net.Socket, { at: number; limit: number }>();

function idleLimit(keepAliveHint: string | string[] | undefined): number {
  const seconds = /^timeout=(\d+)/.exec([keepAliveHint ?? ''].flat()[0])?.[1];
  return seconds === undefined ? IDLE_CONNECTION_MS : Math.min(IDLE_CONNECTION_MS, Number(seconds) * 1000 - 1000);
}

function idleOverdue(socket: net.Socket): boolean {
  const idle = lastExchange.get(socket);
  return idle !== undefined && Date.now() - idle.at >= idle.limit;
}

function newAgents(maxSockets: number): { http: http.Agent; https: https.Agent } {
  return {
    http: new http.Agent({ keepAlive: true, maxSockets }),
    https: new https.Agent({ keepAlive: true, maxSockets }),
  };
}

/** An answer whose body was read whole: no stream, no copy; decoded when asked for. */
class BufferedAnswer implements HttpAnswer {
  readonly headers: { get(name: string): string | null };
  readonly body: { cancel(): Promise<void> } | null;

  constructor(
    readonly status: number,
    private readonly bytes: Buffer | null,
    incoming: http.IncomingHttpHeaders,
  ) {
    this.headers = {
      get: (name) => {
        const value = incoming[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
      },
    };
    this.body = bytes ? { cancel: () => Promise.resolve() } : null;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  text(): Promise<string> {
    return Promise.resolve(this.bytes ? this.bytes.toString('utf8') : '');
  }

  json(): Promise<unknown> {
    return this.text().then((text) => JSON.parse(text) as unknown);
  }
}

function requestBody(body: HttpFetchInit['body'] | undefined): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  throw new TypeError('httpFetch: only string or URLSearchParams bodies');
}

function toHeaderRecord(headers: HttpFetchInit['headers'] | undefined): Record<string, string> {
  if (!headers) return {};
  if (headers instanceof Headers) return Object.fromEntries(headers.entries());
  if (Array.isArray(headers)) return Object.fromEntries(headers);
  return headers;
}
