import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DEFAULT_SEARCH_COUNT,
  badRequest,
  getStatus,
  isOperationOutcome,
  normalizeOperationOutcome,
} from '@medplum/core';
import { FhirRouter, type FhirRepository } from '@medplum/fhir-router';
import type { FhirRequest } from '@medplum/fhir-router';
import type { Binary, Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { indexFhirDefinitions } from '@kc/fhir-definitions';
import { capabilityStatement } from './capability-statement';
import { IN_MEMORY, SqliteRepository, type IndexBuilt, type StoreStats, type StoreSync } from './sqlite-repository';
import type { BackupProgress, StoreBackup } from './store-backup';
import { SubscriptionNotifier, type SubscriptionNotifierOptions } from './subscription-notifier';

export interface FhirSandbox {
  /** e.g. http://127.0.0.1:8103/fhir/R4 */
  baseUrl: string;
  /** The store, when it lives in this thread: a SqliteRepository unless `options.repository` gave another. */
  repo?: FhirRepository;
  /** Where the server runs: this thread, or a worker thread of its own (startFhirSandboxThread). */
  runsIn: 'this thread' | 'a worker thread';
  /** CPU milliseconds the store's own thread has used so far; only when it has one. */
  cpuMs?: () => Promise<number>;
  /** The store's size and work (SqliteRepository.storageStats); absent when the store is another repository. */
  storageStats?: () => Promise<StoreStats>;
  /** Writes a checked copy of the whole store to `file` while it keeps serving (SqliteRepository.backupTo). */
  backupTo?: (file: string, onProgress?: BackupProgress) => Promise<StoreBackup>;
  /**
   * Resolves once the writes committed so far have been matched against the store's Subscriptions (their
   * notifications queued, not yet delivered); only when the store lives in this thread.
   */
  notified?: () => Promise<void>;
  /** Stops listening and closes the store (committed data stays in the data directory). */
  close(): Promise<void>;
}

export interface FhirSandboxOptions {
  port?: number;
  host?: string;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes?: number;
  /**
   * Where the data lives: a directory (created when missing; data survives restarts) or `:memory:` (gone on
   * exit). Default `:memory:`; the service passes FHIR_DATA_DIR.
   */
  dataDir?: string;
  /** Serve this repository instead (tests compare against Medplum's MemoryRepository this way). */
  repository?: FhirRepository;
  /** The largest `_offset` answered, as Medplum's server's maxSearchOffset (default 10,000). */
  maxSearchOffset?: number;
  /** When commits reach the disk (SqliteRepository's `sync`; default `normal`). */
  sync?: StoreSync;
  /** How Subscription notifications are retried (tests shorten the waits; defaults as Medplum's). */
  notifier?: Pick<SubscriptionNotifierOptions, 'backoffMs' | 'maxAttempts' | 'timeoutMs' | 'replayDelayMs'>;
}

const BASE_PATH = '/fhir/R4';
/** An index built over at least this many resources on its first search is worth a log line (it held the store). */
const LOGGED_INDEX_BUILD = 1000;
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/**
 * The embedded FHIR R4 server: Medplum's own FhirRouter over an indexed SQLite repository (node:sqlite),
 * behind plain node:http. It exists so the service and its tests always talk real FHIR over real HTTP, with no
 * external server to install. Durable in a data directory, or in memory when asked (`:memory:`).
 */
export async function startFhirSandbox(options: FhirSandboxOptions = {}): Promise<FhirSandbox> {
  indexFhirDefinitions();
  // The store's own FHIR Subscriptions (rest-hook, as Medplum runs them): told of every commit.
  let notifier: SubscriptionNotifier | undefined;
  const repo =
    options.repository ??
    new SqliteRepository(options.dataDir ?? IN_MEMORY, {
      onIndexBuilt: logLongIndexBuild,
      maxSearchOffset: options.maxSearchOffset,
      sync: options.sync,
      onCommitted: (changes) => notifier?.changed(changes),
      outbox: (resourceType) => notifier?.wants(resourceType) ?? false,
    });
  if (!options.repository) {
    const outbox = repo instanceof SqliteRepository ? repo : undefined;
    notifier = new SubscriptionNotifier({ ...options.notifier, repo, outbox, log: logNotification });
    await notifier.start();
  }
  // A repository passed in belongs to the caller; the one made here is closed with the server.
  const closeRepo = () => {
    notifier?.close();
    if (!options.repository && repo instanceof SqliteRepository) repo.close();
  };
  const sandbox: SandboxContext = {
    router: new FhirRouter(),
    repo,
    maxBodyBytes: options.maxBodyBytes ?? 10 * 1024 * 1024,
    baseUrl: '',
  };
  const server = http.createServer((req, res) => {
    handleRequest(sandbox, req, res).catch((err) => send(res, 500, normalizeOperationOutcome(err)));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
    });
  } catch (err) {
    closeRepo();
    throw err;
  }
  const address = server.address() as AddressInfo;
  sandbox.baseUrl = `http://${options.host ?? '127.0.0.1'}:${address.port}${BASE_PATH}`;
  return {
    baseUrl: sandbox.baseUrl,
    repo,
    runsIn: 'this thread',
    storageStats:
      repo instanceof SqliteRepository
        ? () => Promise.resolve({ ...repo.storageStats(), notifications: notifier?.stats() })
        : undefined,
    notified: notifier && (() => notifier.matched()),
    backupTo: repo instanceof SqliteRepository ? (file, onProgress) => repo.backupTo(file, onProgress) : undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          closeRepo();
          resolve();
        });
      }),
  };
}

/** What every request of one sandbox needs; baseUrl is known once the server listens. */
interface SandboxContext {
  router: FhirRouter;
  repo: FhirRepository;
  maxBodyBytes: number;
  baseUrl: string;
}

/** One HTTP request: /metadata, else the body parsed and handed to Medplum's router (transactions to our own). */
async function handleRequest(
  sandbox: SandboxContext,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sandbox');
  if (!url.pathname.startsWith(BASE_PATH))
    return send(res, 404, outcome('not-found', `Not a FHIR path; the base is ${BASE_PATH}`));
  const path = url.pathname.slice(BASE_PATH.length) || '/';
  if (req.method === 'GET' && path.replace(/\/$/, '') === '/metadata')
    return send(res, 200, capabilityStatement(sandbox.baseUrl));

  const raw = await readBody(req, sandbox.maxBodyBytes);
  if (raw === undefined) return send(res, 413, outcome('too-costly', `Body larger than ${sandbox.maxBodyBytes} bytes`));
  const rawBinary = binaryContentOf(req, path);
  if (rawBinary && sandbox.repo instanceof SqliteRepository)
    return storeBinary(sandbox, sandbox.repo, res, rawBinary, raw);
  // Another repository (Medplum's MemoryRepository, in the store bench) holds the file in `data`, as FHIR JSON.
  const body = rawBinary ? { ...rawBinary, data: raw.toString('base64') } : parseJsonBody(raw.toString('utf8'));
  if (body === INVALID_JSON) return send(res, 400, badRequest('Body is not valid JSON'));
  const fhirRequest: FhirRequest = {
    method: req.method as FhirRequest['method'],
    url: path + url.search,
    pathname: '',
    query: {},
    params: {},
    body,
    headers: req.headers,
  };
  const transaction = isTransaction(req.method, path, body);
  const tooBig = transaction ? strictIsolationRefusal(body as Bundle) : undefined;
  if (tooBig) return send(res, 400, tooBig);
  const route = (): Promise<[OperationOutcome, Resource?, number?]> =>
    transaction
      ? runTransaction(sandbox.router, sandbox.repo, fhirRequest)
      : (sandbox.router.handleRequest(fhirRequest, sandbox.repo) as Promise<[OperationOutcome, Resource?]>);
  // The SQLite store runs a request as one operation, answered once what it wrote or read is committed.
  const [result, resource, failedStatus] =
    sandbox.repo instanceof SqliteRepository ? await sandbox.repo.runAlone(route) : await route();
  const status = typeof failedStatus === 'number' ? failedStatus : getStatus(result);
  if (status >= 400 || !resource) return send(res, status, result);
  if (wantsBinaryContent(req, path) && resource.resourceType === 'Binary')
    return sendBinaryContent(
      res,
      resource,
      sandbox.repo instanceof SqliteRepository ? sandbox.repo.binaryContent(resource.id!) : undefined,
    );
  send(
    res,
    status,
    // A file's content is not sent back to its writer (Medplum answers with the Binary's other fields alone).
    rawBinary
      ? ({ ...resource, data: undefined } as Binary)
      : withPagingLinks(resource, sandbox.baseUrl, path, url.searchParams),
    versionHeaders(resource, status, sandbox.baseUrl),
  );
}

const INVALID_JSON = Symbol('invalid JSON');

const BINARY_PATH = /^\/Binary(\/[^/]+)?\/?$/;

/**
 * A Binary's content sent as it is (POST or PUT of `/Binary` with any content type but JSON), as FHIR servers take
 * a file (Medplum streams it to its binary storage): the Binary it is kept under (its content beside it).
 */
function binaryContentOf(req: http.IncomingMessage, path: string): Binary | undefined {
  const contentType = req.headers['content-type']?.split(';')[0].trim().toLowerCase();
  if (!['POST', 'PUT'].includes(req.method ?? '') || !BINARY_PATH.test(path) || !contentType) return undefined;
  if (contentType.includes('json') && !contentType.includes('ndjson')) return undefined;
  const id = BINARY_PATH.exec(path)?.[1]?.slice(1);
  return { resourceType: 'Binary', ...(id && { id }), contentType };
}

/** A read of a Binary that asks for anything but JSON gets its content, as Medplum answers one. */
function wantsBinaryContent(req: http.IncomingMessage, path: string): boolean {
  const accept = req.headers.accept?.toLowerCase() ?? '';
  return (
    req.method === 'GET' &&
    /^\/Binary\/[^/]+\/?$/.test(path) &&
    accept !== '' &&
    !/json|\*\/\*/.test(accept.replace('ndjson', ''))
  );
}

function sendBinaryContent(res: http.ServerResponse, binary: Binary, stored: Buffer | undefined): void {
  if (res.headersSent) return;
  res.writeHead(200, { 'content-type': binary.contentType ?? 'application/octet-stream' });
  res.end(stored ?? Buffer.from(binary.data ?? '', 'base64'));
}

/** A file posted raw, kept beside its Binary (SqliteRepository.storeBinary), answered as FHIR servers answer a create. */
async function storeBinary(
  sandbox: SandboxContext,
  repo: SqliteRepository,
  res: http.ServerResponse,
  binary: Binary,
  content: Buffer,
): Promise<void> {
  try {
    const stored = await repo.runAlone(() => repo.storeBinary(binary.contentType, content, binary.id));
    const status = binary.id ? 200 : 201;
    send(res, status, stored, versionHeaders(stored, status, sandbox.baseUrl));
  } catch (err) {
    const outcome = normalizeOperationOutcome(err);
    send(res, getStatus(outcome), outcome);
  }
}

/** An empty body is no body; anything else must be JSON. */
function parseJsonBody(raw: string): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return INVALID_JSON;
  }
}

/** ETag and Last-Modified of the version answered, and Location of a created one, as FHIR servers send them. */
function versionHeaders(resource: Resource, status: number, baseUrl: string): Record<string, string> {
  const headers: Record<string, string> = {};
  if (isOperationOutcome(resource) || !resource.meta?.versionId) return headers;
  headers.etag = `W/"${resource.meta.versionId}"`;
  if (resource.meta.lastUpdated) headers['last-modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  if (status === 201 && resource.id)
    headers.location = `${baseUrl}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
  return headers;
}

/** A transaction Bundle posted to the base (not a Bundle resource being created). */
function isTransaction(method: string | undefined, path: string, body: unknown): boolean {
  return (
    method === 'POST' &&
    path.replace(/\/$/, '') === '' &&
    (body as Bundle | undefined)?.resourceType === 'Bundle' &&
    (body as Bundle).type === 'transaction'
  );
}

/** Medplum's server runs a transaction that holds a conditional entry under SERIALIZABLE isolation, refusing more. */
const MEDPLUM_MAX_SERIALIZABLE_ENTRIES = 8;

/**
 * As a Medplum server answers (packages/fhir-router batch preprocessing, `maxSerializableTransactionEntries`): a
 * transaction holding a conditional entry (create with ifNoneExist, update or delete by search) and more than 8
 * entries is refused before anything is written. The sandbox runs transactions its own way (below), so it checks
 * this itself: the service must not depend on what Medplum would refuse.
 */
function strictIsolationRefusal(bundle: Bundle): OperationOutcome | undefined {
  const entries = bundle.entry ?? [];
  const conditional = entries.some(
    (e) =>
      (e.request?.method === 'POST' && e.request.ifNoneExist) ||
      (['PUT', 'DELETE', 'PATCH'].includes(e.request?.method ?? '') && e.request?.url?.includes('?')),
  );
  if (!conditional || entries.length <= MEDPLUM_MAX_SERIALIZABLE_ENTRIES) return undefined;
  return badRequest('Transaction requires strict isolation but has too many entries');
}

class TransactionFailed extends Error {
  constructor(
    readonly status: number,
    readonly outcome: OperationOutcome,
  ) {
    super('transaction entry failed');
  }
}

/**
 * A transaction Bundle, all or nothing. FhirRouter processes one entry by entry (its own transaction mode
 * needs `config.transactions` and then refuses conditional creates in Bundles of more than 8 entries, a limit
 * of Medplum's Postgres server that $apply's Bundles exceed), so the sandbox runs the whole Bundle inside one
 * repository transaction and rolls it back when any entry failed, answering with that entry's status and
 * outcome, as a FHIR server answers a failed transaction.
 */
async function runTransaction(
  router: FhirRouter,
  repo: FhirRepository,
  request: FhirRequest,
): Promise<[OperationOutcome, Resource?, number?]> {
  try {
    return await repo.withTransaction(
      async () => {
        const response = await router.handleRequest(request, repo);
        const failed = (response[1] as Bundle | undefined)?.entry?.find(
          (e) => Number(e.response?.status?.slice(0, 3)) >= 400,
        );
        if (failed) {
          const status = Number(failed.response!.status.slice(0, 3));
          const entryOutcome = failed.response?.outcome;
          throw new TransactionFailed(
            status,
            entryOutcome ?? outcome('processing', `A transaction entry failed (${status})`),
          );
        }
        return [response[0], response[1]];
      },
      { resourceTypes: [] },
    );
  } catch (err) {
    if (err instanceof TransactionFailed) return [err.outcome, undefined, err.status];
    throw err;
  }
}

/**
 * The repository pages (_count/_offset) and counts (total) or says a next page exists, but writes no full links;
 * clients page by following links, so the sandbox adds self/next/previous the way Medplum's server does.
 */
function withPagingLinks(resource: Resource, baseUrl: string, path: string, query: URLSearchParams): Resource {
  if (resource.resourceType !== 'Bundle' || resource.type !== 'searchset') return resource;
  const bundle = resource;
  // A page by cursor (search-paging.ts): the store's own next link, and no previous (a cursor goes forward only).
  const byCursor = bundle.link?.find((l) => l.relation === 'next' && l.url.includes('_cursor='));
  if (byCursor || query.has('_cursor')) {
    const links: Bundle['link'] = [{ relation: 'self', url: `${baseUrl}${path}?${query.toString()}` }];
    if (byCursor) links.push({ relation: 'next', url: `${baseUrl}/${byCursor.url}` });
    return { ...bundle, link: links };
  }
  const count = Number(query.get('_count') ?? DEFAULT_SEARCH_COUNT);
  const offset = Number(query.get('_offset') ?? 0);
  const pageUrl = (pageOffset: number) => {
    const q = new URLSearchParams(query);
    q.set('_offset', String(pageOffset));
    if (!q.has('_count')) q.set('_count', String(count));
    return `${baseUrl}${path}?${q.toString()}`;
  };
  const links: Bundle['link'] = [{ relation: 'self', url: pageUrl(offset) }];
  const returned = bundle.entry?.length ?? 0;
  // The SQLite store says a next page exists (it counts matches only when asked, as Medplum's server does);
  // MemoryRepository counts every match.
  const more = bundle.link?.some((l) => l.relation === 'next') || offset + returned < (bundle.total ?? 0);
  if (count > 0 && returned > 0 && more) links.push({ relation: 'next', url: pageUrl(offset + count) });
  if (offset > 0) links.push({ relation: 'previous', url: pageUrl(Math.max(0, offset - count)) });
  return { ...bundle, link: links };
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooBig = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooBig ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function outcome(code: string, text: string): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code: code as 'invalid', details: { text } }],
  };
}

function send(res: http.ServerResponse, status: number, body: Resource, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': FHIR_JSON, ...headers });
  res.end(JSON.stringify(body));
}

/** A notification failed or given up: the Subscription, the resource type and why (never the resource). */
function logNotification(level: 'info' | 'warn', msg: string, fields: Record<string, unknown>): void {
  logLine(level, 'FhirStoreSubscriptions', msg, fields);
}

/**
 * A search parameter's first search built its index over many stored resources (seconds at 100k): the operator sees
 * why the store paused. A parameter key and counts, no patient data.
 */
function logLongIndexBuild(built: IndexBuilt): void {
  if (built.resources < LOGGED_INDEX_BUILD) return;
  logLine('info', 'FhirStore', 'search parameter indexed on its first search', {
    parameter: built.parameter,
    resources: built.resources,
    ms: Math.round(built.ms),
  });
}

/** One JSON line in the service's log shape: the store's thread has no Nest logger. */
function logLine(level: 'info' | 'warn', context: string, msg: string, fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ level, time: new Date().toISOString(), context, msg, ...fields })}\n`);
}
