import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { Bundle, BundleEntry, OperationOutcome, Resource, ResourceType } from '@medplum/fhirtypes';
import type { FhirAuthConfig } from '@kc/config';
import { FhirAuthorizer } from './fhir-auth';
import {
  FhirHttpError,
  FhirNotFoundError,
  FhirOutOfTimeError,
  FhirTransactionNotConfirmedError,
  FhirUnavailableError,
  FhirVersionConflictError,
  outcomeText,
} from './fhir-errors';
import { ifMatchFor, versionIdFromETag } from './etag';
import { httpFetch, type HttpAnswer, type HttpFetch } from './http-fetch';

export interface FhirClientOptions {
  baseUrl: string;
  auth?: FhirAuthConfig;
  /** The transport (default httpFetch); the global fetch fits too. */
  fetchImpl?: HttpFetch;
  /** Attempts for retryable failures (network, 429, 502-504); 1 disables retries. */
  maxAttempts?: number;
  /** Longest wait for a server's Retry-After before giving up and passing it on (default 5 s). */
  maxRetryWaitMs?: number;
  /** First backoff delay; doubles each attempt, with jitter. */
  retryBaseDelayMs?: number;
  timeoutMs?: number;
  /** Safety bound for searchAll: servers with broken next links must not loop forever. */
  maxPages?: number;
}

export type SearchParams = Record<string, string | number | string[] | undefined>;

export interface CreateResult<T extends Resource> {
  resource: T;
  /** false when a conditional create (If-None-Exist) matched an existing resource. */
  created: boolean;
}

/**
 * Told about every resource this client wrote (create, update, upsert, transaction), after the server accepted
 * it: how read models beside the FHIR server (the worklist index) stay current on every write path.
 * `locations` are transaction entries the server answered without a body (HAPI's return=minimal).
 */
export type WriteListener = (written: Resource[], locations: string[]) => Promise<void>;

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
const FHIR_JSON = 'application/fhir+json';

/**
 * The one way this service talks to a FHIR R4 server (the embedded sandbox, Medplum, HAPI, ...).
 * Plain REST over HTTP, with the quirks that differ between servers normalised here so no caller sees them.
 */
export class FhirClient {
  readonly baseUrl: string;
  private readonly authorizer: FhirAuthorizer;
  private readonly fetchImpl: HttpFetch;
  private readonly maxAttempts: number;
  private readonly maxRetryWaitMs: number;
  private readonly retryBaseDelayMs: number;
  private readonly timeoutMs: number;
  private readonly maxPages: number;
  private readonly writeListeners: WriteListener[] = [];
  /** A caller's time budget (see within): set on a bounded view only. */
  private budget?: AbortSignal;

  constructor(options: FhirClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetchImpl = options.fetchImpl ?? httpFetch();
    this.authorizer = new FhirAuthorizer(options.auth ?? { kind: 'none' }, this.fetchImpl);
    this.maxAttempts = options.maxAttempts ?? 4;
    this.maxRetryWaitMs = options.maxRetryWaitMs ?? 5000;
    this.retryBaseDelayMs = options.retryBaseDelayMs ?? 200;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.maxPages = options.maxPages ?? 1000;
  }

  /**
   * This client with a time budget: its requests, retries and pauses end when `signal` aborts (a CDS Hooks call the
   * EHR waits a few seconds for), with FhirOutOfTimeError. A view: transport, credentials and listeners are shared.
   */
  within(signal: AbortSignal): FhirClient {
    const bounded = Object.create(this) as FhirClient;
    bounded.budget = signal;
    return bounded;
  }

  /** Registers a listener for every write this client makes (see WriteListener). */
  onWrite(listener: WriteListener): void {
    this.writeListeners.push(listener);
  }

  private async notifyWritten(written: Resource[], locations: string[] = []): Promise<void> {
    for (const listener of this.writeListeners) await listener(written, locations);
  }

  async read<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T> {
    const { body, etag } = await this.request<T>('GET', `${resourceType}/${encodeURIComponent(id)}`);
    return withVersion(body!, etag);
  }

  /** Read that answers undefined for 404/410 instead of throwing. */
  async readIfExists<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T | undefined> {
    try {
      return await this.read<T>(resourceType, id);
    } catch (err) {
      if (err instanceof FhirNotFoundError) return undefined;
      throw err;
    }
  }

  async search<T extends Resource>(resourceType: ResourceType, params: SearchParams = {}): Promise<Bundle<T>> {
    const { body } = await this.request<Bundle<T>>('GET', `${resourceType}${toQuery(params)}`);
    return body!;
  }

  /**
   * Every match, following the server's own next links: HAPI pages with `_getpages`, Medplum with
   * `_offset` or `_cursor`; following the link verbatim works for both.
   */
  async searchAll<T extends Resource>(resourceType: ResourceType, params: SearchParams = {}): Promise<T[]> {
    const resources: T[] = [];
    for await (const page of this.searchPages<T>(resourceType, params)) resources.push(...matchesOf<T>(page));
    return resources;
  }

  /** Each page of a search in turn, the server's next links followed (matches, includes and outcomes as sent). */
  async *searchPages<T extends Resource>(
    resourceType: ResourceType,
    params: SearchParams = {},
  ): AsyncGenerator<Bundle<T>> {
    let bundle = await this.search<T>(resourceType, params);
    for (let page = 1; ; page++) {
      yield bundle;
      const next = bundle.link?.find((l) => l.relation === 'next')?.url;
      if (!next || (bundle.entry ?? []).length === 0) return;
      if (page >= this.maxPages)
        throw new FhirUnavailableError(`search ${resourceType} exceeded ${this.maxPages} pages`);
      bundle = (await this.request<Bundle<T>>('GET', this.sameServer(next))).body!;
    }
  }

  /**
   * Create, optionally conditional (If-None-Exist): the same resource sent twice, or by two workers
   * at once, ends as one.
   */
  async create<T extends Resource>(
    resource: T,
    options: { ifNoneExist?: SearchParams } = {},
  ): Promise<CreateResult<T>> {
    const headers: Record<string, string> = {};
    if (options.ifNoneExist) headers['if-none-exist'] = toQuery(options.ifNoneExist).slice(1);
    let answer: Awaited<ReturnType<typeof this.request<T>>>;
    try {
      answer = await this.request<T>('POST', resource.resourceType, resource, headers, {
        retryable: Boolean(options.ifNoneExist),
      });
    } catch (err) {
      const existing = options.ifNoneExist && (await this.oneOfSeveralMatching(err, resource, options.ifNoneExist));
      if (existing) return { resource: existing, created: false };
      throw err;
    }
    const { body, status, etag, location } = answer;
    const created = status === 201;
    // HAPI with Prefer: return=minimal sends no body; fetch what the Location names.
    const stored =
      !body || !('resourceType' in body)
        ? await this.readLocation<T>(location, resource.resourceType)
        : withVersion(body, etag);
    if (created) await this.notifyWritten([stored]);
    return { resource: stored, created };
  }

  /**
   * A conditional create refused because its condition matches several resources (412: Medplum "Multiple resources
   * found matching condition", HAPI "matched 2 resources"): it exists, more than once (an earlier fault, or another
   * writer's), so nothing is created and the oldest match stands for it; the refusal would otherwise fail its caller
   * on every try (a sweep stuck on one duplicate). Undefined for any other error. Logged, ids only.
   */
  private async oneOfSeveralMatching<T extends Resource>(
    err: unknown,
    resource: T,
    condition: SearchParams,
  ): Promise<T | undefined> {
    if (!(err instanceof FhirVersionConflictError) || err.status !== 412) return undefined;
    const matches = (await this.searchAll<T>(resource.resourceType, { ...condition, _count: '10' })).sort((a, b) =>
      (a.meta?.lastUpdated ?? '').localeCompare(b.meta?.lastUpdated ?? ''),
    );
    if (matches.length < 2) return undefined;
    new Logger(FhirClient.name).warn({
      msg: 'a conditional create matched several resources: the oldest stands for it',
      resourceType: resource.resourceType,
      ids: matches.map((m) => m.id),
    });
    return matches[0];
  }

  /** Update; with ifMatch the write only lands if nobody changed the resource since that version. */
  async update<T extends Resource>(resource: T, options: { ifMatch?: string } = {}): Promise<T> {
    if (!resource.id) throw new Error('update needs resource.id');
    const headers: Record<string, string> = {};
    if (options.ifMatch) headers['if-match'] = ifMatchFor(options.ifMatch);
    const { body, etag } = await this.request<T>(
      'PUT',
      `${resource.resourceType}/${encodeURIComponent(resource.id)}`,
      resource,
      headers,
    );
    const stored =
      !body || !('resourceType' in body)
        ? await this.read<T>(resource.resourceType, resource.id)
        : withVersion(body, etag);
    await this.notifyWritten([stored]);
    return stored;
  }

  /** Conditional update (PUT Type?criteria): creates when nothing matches, updates the single match. */
  async upsert<T extends Resource>(resource: T, criteria: SearchParams): Promise<T> {
    const { body } = await this.request<T>('PUT', `${resource.resourceType}${toQuery(criteria)}`, resource);
    if (body && 'resourceType' in body) await this.notifyWritten([body]);
    return body!;
  }

  /**
   * A transaction Bundle: all entries land or none do. The answer is checked entry by entry: a server that answers 200
   * without confirming every entry (a missing entry, a non-2xx status, a write with neither resource nor location) has
   * not written what was asked, and saying otherwise would report a plan that cannot be read back.
   */
  async transaction(entries: BundleEntry[]): Promise<Bundle> {
    const bundle: Bundle = { resourceType: 'Bundle', type: 'transaction', entry: entries };
    // Safe to send again when every entry is, or when an If-Match update guards it (a second landing is a 412).
    const guarded = entries.some((e) => e.request?.method === 'PUT' && e.request.ifMatch);
    const { body } = await this.request<Bundle>(
      'POST',
      '',
      bundle,
      {},
      { retryable: guarded || entries.every(isIdempotentEntry) },
    );
    const problem = unconfirmedEntry(entries, body);
    if (problem) throw new FhirTransactionNotConfirmedError(`transaction not confirmed by the FHIR server: ${problem}`);
    const answered = body?.entry ?? [];
    await this.notifyWritten(
      answered.flatMap((e) => (e.resource ? [e.resource] : [])),
      answered.flatMap((e) => (!e.resource && e.response?.location ? [e.response.location] : [])),
    );
    return body!;
  }

  /**
   * A batch Bundle: independent entries in one round trip, each answered on its own (a 404 in one entry does not
   * fail the others). Retried like any read when every entry is safe to send again (reads, conditional creates).
   */
  async batch(entries: BundleEntry[]): Promise<Bundle> {
    const bundle: Bundle = { resourceType: 'Bundle', type: 'batch', entry: entries };
    const { body } = await this.request<Bundle>(
      'POST',
      '',
      bundle,
      {},
      { retryable: entries.every(isIdempotentEntry) },
    );
    return body!;
  }

  /**
   * A resource as it is, or, deleted, as it was last (`deleted: true`); undefined when the server has no trace of it.
   * What a deletion notification names no longer reads: only its last version says what it was.
   */
  async readEvenIfDeleted<T extends Resource>(
    resourceType: T['resourceType'],
    id: string,
  ): Promise<{ resource: T; deleted: boolean } | undefined> {
    const resource = await this.readIfExists<T>(resourceType, id);
    if (resource) return { resource, deleted: false };
    const last = await this.lastVersionOf<T>(resourceType, id);
    return last && { resource: last, deleted: true };
  }

  /**
   * The latest version the server keeps of a resource (its instance history, newest first: Medplum's and HAPI's answer
   * it for a deleted resource, the deletion itself an entry without one); undefined when it has none.
   */
  private async lastVersionOf<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T | undefined> {
    return (await this.versionsOf<T>(resourceType, id, { pages: 1 }))[0];
  }

  /**
   * The versions the server keeps of a resource, newest first: its instance history, every page (a server that pages
   * it, as HAPI does by 20, gives older versions behind `next`; since session 46, before only the first page was read),
   * or the first `pages`; none when it has no trace of it. A deletion is an entry without a resource, left out.
   */
  async versionsOf<T extends Resource>(
    resourceType: T['resourceType'],
    id: string,
    { pages = this.maxPages }: { pages?: number } = {},
  ): Promise<T[]> {
    const versions: T[] = [];
    let path: string | undefined = `${resourceType}/${encodeURIComponent(id)}/_history`;
    try {
      for (let page = 0; path && page < pages; page++) {
        const bundle: Bundle<T> | undefined = (await this.request<Bundle<T>>('GET', path)).body;
        versions.push(...(bundle?.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : [])));
        const next: string | undefined = bundle?.entry?.length
          ? bundle.link?.find((l) => l.relation === 'next')?.url
          : undefined;
        path = next && this.sameServer(next);
      }
    } catch (err) {
      if (err instanceof FhirNotFoundError) return versions;
      throw err;
    }
    return versions;
  }

  /** Invoke a FHIR operation, e.g. operation('PlanDefinition/x/$apply', parameters). */
  async operation<T extends Resource>(path: string, parameters?: Resource): Promise<T> {
    const { body } = await this.request<T>(parameters ? 'POST' : 'GET', path, parameters);
    return body!;
  }

  /**
   * A Binary holding `content` as it is (not a FHIR resource): posted raw with its own content type, as FHIR servers
   * take a document or a file (Medplum streams it to its binary storage, HAPI to its binary store). Its id.
   */
  async createBinary(contentType: string, content: string): Promise<string> {
    const { body, location } = await this.request<Resource>('POST', 'Binary', new RawContent(contentType, content));
    const id = body?.id ?? (location && /Binary\/([^/]+)/.exec(location)?.[1]);
    if (!id) throw new FhirUnavailableError('FHIR POST Binary answered without an id');
    return id;
  }

  /** A Binary's content as it was written (asked for by its content type, not as FHIR JSON). */
  async readBinary(id: string, contentType: string): Promise<string> {
    const { body } = await this.request<string>(
      'GET',
      `Binary/${encodeURIComponent(id)}`,
      undefined,
      {
        accept: contentType,
      },
      { rawAnswer: true },
    );
    return body ?? '';
  }

  /** Deletes a resource; one already gone (404/410) is deleted as well. */
  async delete(resourceType: ResourceType, id: string): Promise<void> {
    try {
      await this.request('DELETE', `${resourceType}/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!(err instanceof FhirNotFoundError)) throw err;
    }
  }

  /** The page a search's next link names (one the server gave earlier: a resumed read goes on from it). */
  async searchPageAt<T extends Resource>(nextLink: string): Promise<Bundle<T>> {
    return (await this.request<Bundle<T>>('GET', this.sameServer(nextLink))).body!;
  }

  /** Cheap liveness probe for health checks. */
  async ping(): Promise<void> {
    await this.request('GET', 'metadata?_summary=true', undefined, {}, { retryable: false });
  }

  private async readLocation<T extends Resource>(location: string | null, resourceType: string): Promise<T> {
    const match = location && new RegExp(`${resourceType}/([^/]+)`).exec(location);
    if (!match)
      throw new FhirHttpError(502, undefined, `FHIR server created ${resourceType} but sent neither body nor Location`);
    return this.read<T>(resourceType as T['resourceType'], match[1]);
  }

  /** Next links carry the server's idea of its own address, which behind a proxy is not ours. */
  private sameServer(url: string): string {
    const base = new URL(this.baseUrl);
    const link = new URL(url, this.baseUrl + '/');
    if (link.origin === base.origin) return link.toString();
    link.protocol = base.protocol;
    link.host = base.host;
    return link.toString();
  }

  private async request<T>(
    method: string,
    pathOrUrl: string,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
    opts: { retryable?: boolean; rawAnswer?: boolean } = {},
  ): Promise<FhirResponse<T>> {
    const url = /^https?:/.test(pathOrUrl) ? pathOrUrl : `${this.baseUrl}/${pathOrUrl}`;
    const retryable = opts.retryable ?? (method === 'GET' || method === 'PUT' || method === 'DELETE');
    const attempts = retryable ? this.maxAttempts : 1;
    let lastError: unknown;
    let refreshedToken = false;
    // Bounded by maxAttempts; per failure kind, `attempts` (network errors, 502-504) or maxAttempts (429).
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      if (this.budget?.aborted) throw this.outOfTime();
      let response: HttpAnswer;
      try {
        response = await this.send(method, url, body, extraHeaders);
      } catch (err) {
        if (this.budget?.aborted) throw this.outOfTime();
        lastError = err;
        if (attempt >= attempts) break;
        await pause(this.retryDelay(attempt, null), this.budget);
        continue;
      }
      // An expired OAuth2 token: fetch a fresh one and try once more.
      if (response.status === 401 && !refreshedToken && this.authorizer.canRefresh) {
        refreshedToken = true;
        this.authorizer.invalidate();
        await response.body?.cancel();
        attempt--;
        continue;
      }
      if (RETRYABLE_STATUS.has(response.status)) {
        lastError = new FhirHttpError(response.status, undefined, `FHIR ${method} answered ${response.status}`);
        await response.body?.cancel();
        // 429: the server refused before doing anything, so even a create may be sent again.
        const allowed = response.status === 429 ? this.maxAttempts : attempts;
        const retryAfter = response.headers.get('retry-after');
        const wait = this.retryDelay(attempt, retryAfter);
        const advice = retryAfter ? Math.ceil(wait / 1000) : undefined;
        // Out of attempts, or asked to come back later than a caller should wait: give up, passing the advice on.
        if (attempt >= allowed || wait > this.maxRetryWaitMs) throw this.unavailable(lastError, advice);
        await pause(wait, this.budget);
        continue;
      }
      return readResponse<T>(response, method, pathOrUrl, opts.rawAnswer);
    }
    if (this.budget?.aborted) throw this.outOfTime();
    throw this.unavailable(lastError);
  }

  /** One HTTP exchange: FHIR JSON, the current authorization, the per-request timeout. */
  private async send(
    method: string,
    url: string,
    body: unknown,
    extraHeaders: Record<string, string>,
  ): Promise<HttpAnswer> {
    const headers: Record<string, string> = { accept: FHIR_JSON, ...extraHeaders };
    const authorization = await this.authorizer.header();
    if (authorization) headers.authorization = authorization;
    if (body !== undefined) headers['content-type'] = body instanceof RawContent ? body.contentType : FHIR_JSON;
    return this.fetchImpl(url, {
      method,
      headers,
      body: body === undefined ? undefined : body instanceof RawContent ? body.content : JSON.stringify(body),
      signal: this.budget
        ? AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.budget])
        : AbortSignal.timeout(this.timeoutMs),
    });
  }

  private outOfTime(): FhirOutOfTimeError {
    return new FhirOutOfTimeError(`FHIR server at ${this.baseUrl} did not answer within the caller's time budget`);
  }

  private unavailable(lastError: unknown, retryAfterSeconds?: number): FhirUnavailableError {
    if (lastError instanceof FhirHttpError)
      return new FhirUnavailableError(lastError.message, lastError, retryAfterSeconds);
    return new FhirUnavailableError(
      `FHIR server unreachable at ${this.baseUrl}: ${(lastError as Error)?.message ?? lastError}`,
      lastError,
    );
  }

  /** The server's Retry-After (seconds or an HTTP date) when it gave one, else exponential backoff with jitter. */
  private retryDelay(attempt: number, retryAfter: string | null): number {
    const seconds = retryAfter && /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) * 1000 : NaN;
    const date = retryAfter && Number.isNaN(seconds) ? Date.parse(retryAfter) - Date.now() : NaN;
    const serverSays = Number.isFinite(seconds) ? seconds : date;
    if (Number.isFinite(serverSays)) return Math.max(0, serverSays);
    return this.retryBaseDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random());
  }
}

/** A body sent as it is, with its own content type (a Binary's content), not as FHIR JSON. */
class RawContent {
  constructor(
    readonly contentType: string,
    readonly content: string,
  ) {}
}

interface FhirResponse<T> {
  status: number;
  body?: T;
  etag: string | null;
  location: string | null;
}

/** A final answer (not retried): its body parsed, errors as the typed FhirHttpError subclasses. */
async function readResponse<T>(
  response: HttpAnswer,
  method: string,
  pathOrUrl: string,
  rawAnswer = false,
): Promise<FhirResponse<T>> {
  const text = await response.text();
  const parsed = text && (!rawAnswer || !response.ok) ? safeJson(text) : undefined;
  if (!response.ok) throw toError(response.status, parsed as OperationOutcome | undefined, method, pathOrUrl);
  return {
    status: response.status,
    body: (rawAnswer ? text : parsed) as T | undefined,
    etag: response.headers.get('etag'),
    location: response.headers.get('location'),
  };
}

function toError(status: number, outcome: OperationOutcome | undefined, method: string, path: string): FhirHttpError {
  const isOutcome = outcome?.resourceType === 'OperationOutcome' ? outcome : undefined;
  // Only the resource type goes in the message: ids and query strings may identify a patient.
  const what = `${method} ${path.split(/[/?]/)[0] || 'Bundle'}`;
  const message = `FHIR ${what} answered ${status}${outcomeText(isOutcome) ? ': ' + outcomeText(isOutcome) : ''}`;
  if (status === 409 || status === 412) return new FhirVersionConflictError(status, isOutcome, message);
  if (status === 404 || status === 410) return new FhirNotFoundError(status, isOutcome, message);
  return new FhirHttpError(status, isOutcome, message);
}

function withVersion<T extends Resource>(resource: T, etag: string | null): T {
  const versionId = versionIdFromETag(etag);
  if (versionId && !resource.meta?.versionId) return { ...resource, meta: { ...resource.meta, versionId } };
  return resource;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A wait between attempts, over early when the caller's budget runs out (the next attempt then gives up). */
function pause(ms: number, budget?: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal: budget }).catch(() => undefined);
}

/** What a transaction-response does not confirm, if anything. */
export function unconfirmedEntry(sent: BundleEntry[], answer: Bundle | undefined): string | undefined {
  if (answer?.resourceType !== 'Bundle') return 'no Bundle in the answer';
  const answered = answer.entry ?? [];
  if (answered.length !== sent.length) return `${answered.length} entries answered for ${sent.length} sent`;
  for (let i = 0; i < sent.length; i++) {
    const status = Number.parseInt(answered[i].response?.status ?? '', 10);
    if (!(status >= 200 && status < 300)) return `entry ${i} answered ${answered[i].response?.status ?? 'no status'}`;
    const writes = sent[i].request?.method === 'POST' || sent[i].request?.method === 'PUT';
    if (writes && !answered[i].resource?.id && !answered[i].response?.location)
      return `entry ${i} has neither a resource nor a location`;
  }
  return undefined;
}

function isIdempotentEntry(entry: BundleEntry): boolean {
  const method = entry.request?.method;
  return (
    method === 'GET' ||
    method === 'PUT' ||
    method === 'DELETE' ||
    (method === 'POST' && Boolean(entry.request?.ifNoneExist))
  );
}

export function toQuery(params: SearchParams): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) search.append(key, String(v));
  }
  const query = search.toString();
  return query ? `?${query}` : '';
}

/** A batch or transaction entry that reads: `GET Type?params` (or `GET Type/id` with a path). */
export function getEntry(path: string, params: SearchParams = {}): BundleEntry {
  return { request: { method: 'GET', url: `${path}${toQuery(params)}` } };
}

/**
 * A transaction entry that writes a resource back over the version it was read at (`PUT Type/id`, If-Match): a
 * change made meanwhile fails the transaction. Without a version (never read), a plain update.
 */
export function updateEntry<T extends Resource>(resource: T, readVersionId: string | undefined): BundleEntry<T> {
  return {
    resource,
    request: {
      method: 'PUT',
      url: `${resource.resourceType}/${resource.id}`,
      ifMatch: readVersionId ? ifMatchFor(readVersionId) : undefined,
    },
  };
}

/**
 * The resource one batch-response entry answered with: undefined for 404/410, a FhirHttpError for other
 * failures (the whole job retries, as a failed single request would).
 */
export function batchResult<T extends Resource>(entry: BundleEntry | undefined, what: string): T | undefined {
  const status = Number(entry?.response?.status?.slice(0, 3) ?? (entry?.resource ? 200 : 0));
  if (status === 404 || status === 410) return undefined;
  if (status >= 400 || !entry?.resource) {
    const outcome = entry?.response?.outcome;
    throw toError(status || 502, outcome, 'GET', what);
  }
  return entry.resource as T;
}

/** The matches of a searchset Bundle (not _include-d or outcome entries). */
export function matchesOf<T extends Resource>(bundle: Bundle | undefined): T[] {
  return (bundle?.entry ?? [])
    .filter((e) => e.resource && e.search?.mode !== 'include' && e.search?.mode !== 'outcome')
    .map((e) => e.resource as T);
}

/** The _include-d resources of a searchset Bundle; of one type only when `resourceType` is given. */
export function includedOf<T extends Resource>(bundle: Bundle | undefined, resourceType?: T['resourceType']): T[] {
  return (bundle?.entry ?? [])
    .filter((e) => e.resource && e.search?.mode === 'include')
    .map((e) => e.resource as T)
    .filter((r) => !resourceType || r.resourceType === resourceType);
}

/** Whether a searchset Bundle left matches out (a next link, or fewer entries than its total). */
export function hasMorePages(bundle: Bundle | undefined): boolean {
  if (!bundle) return false;
  if (bundle.link?.some((l) => l.relation === 'next')) return true;
  return bundle.total !== undefined && matchesOf(bundle).length < bundle.total;
}
