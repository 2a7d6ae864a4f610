import { ifMatchFor } from './etag';
import type { Patient } from '@medplum/fhirtypes';
import { outcome, startFakeServer, type FakeHandler, type FakeServer } from '../../../test/support/fake-fhir-servers';
import { FhirClient } from './fhir-client';
import {
  FhirOutOfTimeError,
  FhirTransactionNotConfirmedError,
  FhirUnavailableError,
  FhirVersionConflictError,
} from './fhir-errors';

const patient = (id: string, versionId = '1'): Patient => ({ resourceType: 'Patient', id, meta: { versionId } });
const page = (ids: string[], next?: string) => ({
  resourceType: 'Bundle',
  type: 'searchset',
  entry: ids.map((id) => ({ resource: patient(id), search: { mode: 'match' } })),
  link: next ? [{ relation: 'next', url: next }] : [],
});

describe('FhirClient normalises server quirks', () => {
  let server: FakeServer | undefined;
  afterEach(async () => server?.close());

  it('HAPI: 409 on a stale If-Match is a version conflict', async () => {
    server = await startFakeServer(() => ({
      status: 409,
      body: outcome('conflict', 'HAPI-0989: Trying to update Patient/1/_history/1 but this is not the current version'),
    }));
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 });
    await expect(fhir.update(patient('1'), { ifMatch: '1' })).rejects.toBeInstanceOf(FhirVersionConflictError);
    expect(server.requests[0].headers['if-match']).toBe('W/"1"');
  });

  it('Medplum: 412 on a stale If-Match is the same version conflict', async () => {
    server = await startFakeServer(() => ({ status: 412, body: outcome('conflict', 'Version mismatch') }));
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 });
    await expect(fhir.update(patient('1'), { ifMatch: '1' })).rejects.toBeInstanceOf(FhirVersionConflictError);
  });

  it("Medplum's rate limit (429 + Retry-After): waits as told and sends even a create again (nothing was done)", async () => {
    let calls = 0;
    server = await startFakeServer(() =>
      ++calls === 1
        ? { status: 429, headers: { 'retry-after': '1' }, body: outcome('throttled', 'Too many requests') }
        : { status: 201, body: patient('9') },
    );
    const fhir = new FhirClient({ baseUrl: server.baseUrl });
    const started = Date.now();
    const { resource } = await fhir.create(patient('x'));
    expect(resource.id).toBe('9');
    expect(server.requests.map((r) => r.method)).toEqual(['POST', 'POST']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('a Retry-After longer than a caller should wait: gives up at once and passes the advice on', async () => {
    server = await startFakeServer(() => ({
      status: 429,
      headers: { 'retry-after': '120' },
      body: outcome('throttled', 'Too many requests'),
    }));
    const fhir = new FhirClient({ baseUrl: server.baseUrl });
    const started = Date.now();
    const error = await fhir.read('Patient', '1').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(FhirUnavailableError);
    expect((error as FhirUnavailableError).retryAfterSeconds).toBe(120);
    expect(server.requests).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('a transaction answered 200 without confirming every entry is not taken as written', async () => {
    const sent = [
      { fullUrl: 'urn:uuid:a', resource: patient('a'), request: { method: 'POST' as const, url: 'Patient' } },
      { fullUrl: 'urn:uuid:b', resource: patient('b'), request: { method: 'POST' as const, url: 'Patient' } },
    ];
    const answers = [
      {
        resourceType: 'Bundle',
        type: 'transaction-response',
        entry: [{ response: { status: '201', location: 'Patient/1/_history/1' } }],
      },
      {
        resourceType: 'Bundle',
        type: 'transaction-response',
        entry: [{ response: { status: '201', location: 'Patient/1/_history/1' } }, { response: { status: '500' } }],
      },
      {
        resourceType: 'Bundle',
        type: 'transaction-response',
        entry: [{ response: { status: '201' } }, { response: { status: '201' } }],
      },
    ];
    let call = 0;
    server = await startFakeServer(() => ({ status: 200, body: answers[call++] }));
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 });
    for (const reason of [/1 entries answered for 2 sent/, /entry 1 answered 500/, /neither a resource nor a location/])
      await expect(fhir.transaction(sent)).rejects.toThrow(reason);
    await expect(fhir.transaction(sent)).rejects.toBeInstanceOf(FhirTransactionNotConfirmedError);
  });

  it('HAPI paging: follows _getpages links, even when they name another host (behind a proxy)', async () => {
    server = await startFakeServer((req) => {
      if (req.url.startsWith('/fhir/Patient'))
        return {
          status: 200,
          body: page(['a', 'b'], 'http://hapi.internal:8080/fhir?_getpages=abc&_getpagesoffset=2&_count=2'),
        };
      if (req.url.includes('_getpagesoffset=2')) return { status: 200, body: page(['c'], undefined) };
      return { status: 404, body: outcome('not-found', req.url) };
    });
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 });
    expect((await fhir.searchAll<Patient>('Patient', { _count: 2 })).map((p) => p.id)).toEqual(['a', 'b', 'c']);
    expect(server.requests[1].url).toBe('/fhir?_getpages=abc&_getpagesoffset=2&_count=2');
  });

  it('Medplum paging: follows _cursor links', async () => {
    server = await startFakeServer((req, base) => {
      if (!req.url.includes('_cursor'))
        return { status: 200, body: page(['a'], `${base}/Patient?_count=1&_cursor=xyz`) };
      return { status: 200, body: page(['b']) };
    });
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 });
    expect((await fhir.searchAll<Patient>('Patient', { _count: 1 })).map((p) => p.id)).toEqual(['a', 'b']);
  });

  it('Medplum paging: follows _offset links', async () => {
    server = await startFakeServer((req, base) => {
      const offset = Number(new URL(req.url, 'http://x').searchParams.get('_offset') ?? 0);
      const ids = ['a', 'b', 'c', 'd', 'e'].slice(offset, offset + 2);
      return {
        status: 200,
        body: page(ids, offset + 2 < 5 ? `${base}/Patient?_count=2&_offset=${offset + 2}` : undefined),
      };
    });
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 });
    expect((await fhir.searchAll<Patient>('Patient', { _count: 2 })).map((p) => p.id)).toEqual([
      'a',
      'b',
      'c',
      'd',
      'e',
    ]);
    expect(server.requests.map((r) => new URL(r.url, 'http://x').searchParams.get('_offset'))).toEqual([
      null,
      '2',
      '4',
    ]);
  });

  it('conditional create matching several resources (412, a duplicate on record): the oldest stands for it, nothing created', async () => {
    const older = { ...patient('older'), meta: { versionId: '1', lastUpdated: '2026-01-01T00:00:00Z' } };
    const newer = { ...patient('newer'), meta: { versionId: '1', lastUpdated: '2026-02-01T00:00:00Z' } };
    server = await startFakeServer((req) =>
      req.method === 'POST'
        ? { status: 412, body: outcome('processing', 'Multiple resources found matching condition') }
        : {
            status: 200,
            body: {
              resourceType: 'Bundle',
              type: 'searchset',
              entry: [newer, older].map((resource) => ({ resource })),
            },
          },
    );
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 });
    // Before session 49 the refusal failed the caller on every try (a sweep stuck on one duplicate: clinic day 3119).
    const { resource, created } = await fhir.create(patient('x'), { ifNoneExist: { identifier: 'sys|k' } });
    expect([resource.id, created]).toEqual(['older', false]);
    expect(server.requests.map((r) => r.method)).toEqual(['POST', 'GET']);
    // One match only is a stale-version conflict of another kind: passed on.
    await server.close();
    server = await startFakeServer((req) =>
      req.method === 'POST'
        ? { status: 412, body: outcome('conflict', 'Precondition failed') }
        : { status: 200, body: { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: older }] } },
    );
    const again = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 });
    await expect(again.create(patient('x'), { ifNoneExist: { identifier: 'sys|k' } })).rejects.toBeInstanceOf(
      FhirVersionConflictError,
    );
  });

  it('conditional create: sends If-None-Exist, and a 200 (HAPI, Medplum: match found) means nothing was created', async () => {
    server = await startFakeServer(() => ({ status: 200, headers: { etag: 'W/"2"' }, body: patient('existing', '2') }));
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 });
    const { resource, created } = await fhir.create<Patient>(
      { resourceType: 'Patient' },
      { ifNoneExist: { identifier: 'urn:sys|k:1' } },
    );
    expect(created).toBe(false);
    expect(resource.id).toBe('existing');
    expect(server.requests[0].headers['if-none-exist']).toBe('identifier=urn%3Asys%7Ck%3A1');
  });

  it('a server slower than the timeout: the read is retried, then fails with a typed error', async () => {
    server = await startFakeServer(() => ({ status: 200, body: patient('1') }));
    const slow: typeof fetch = async (input, init) => {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, 1000);
        init?.signal?.addEventListener('abort', () => (clearTimeout(timer), reject(init.signal!.reason as Error)));
      });
      return fetch(input, init);
    };
    const fhir = new FhirClient({
      baseUrl: server.baseUrl,
      maxAttempts: 2,
      retryBaseDelayMs: 5,
      timeoutMs: 50,
      fetchImpl: slow,
    });
    await expect(fhir.read('Patient', '1')).rejects.toBeInstanceOf(FhirUnavailableError);
  });

  it("within a caller's budget: a server that does not answer ends the read when the budget does, not after its retries", async () => {
    server = await startFakeServer(() => ({ status: 200, body: patient('1') }));
    const held: (() => void)[] = [];
    // A server that never answers (until the test lets go): each attempt waits for its own timeout or an abort.
    const hanging: typeof fetch = (_input, init) =>
      new Promise((_resolve, reject) => {
        const abort = () => reject(init!.signal!.reason as Error);
        init?.signal?.addEventListener('abort', abort);
        held.push(abort);
      });
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 4, timeoutMs: 2000, fetchImpl: hanging });
    const started = Date.now();
    await expect(fhir.within(AbortSignal.timeout(150)).read('Patient', '1')).rejects.toBeInstanceOf(FhirOutOfTimeError);
    // Four attempts of 2 s each without the budget; one, cut at 150 ms, with it.
    expect(Date.now() - started).toBeLessThan(1500);
    expect(held).toHaveLength(1);
  });

  it('within a budget: retries stop at the budget too, and the client it came from keeps no budget', async () => {
    let calls = 0;
    server = await startFakeServer(() =>
      ++calls <= 2 ? { status: 503, body: outcome('transient', 'down') } : { status: 200, body: patient('1') },
    );
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 3, retryBaseDelayMs: 400 });
    const budget = new AbortController();
    setTimeout(() => budget.abort(), 100);
    await expect(fhir.within(budget.signal).read('Patient', '1')).rejects.toBeInstanceOf(FhirOutOfTimeError);
    expect(calls).toBe(1); // aborted in the pause before its second attempt
    // The unbounded client: same server, same transport, no budget.
    expect((await fhir.read<Patient>('Patient', '1')).id).toBe('1');
  });

  it('HAPI with return=minimal: an empty 201 is resolved through the Location header', async () => {
    server = await startFakeServer((req, base): ReturnType<FakeHandler> => {
      if (req.method === 'POST') return { status: 201, headers: { location: `${base}/Patient/77/_history/1` } };
      return { status: 200, headers: { etag: 'W/"1"' }, body: patient('77') };
    });
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 });
    const { resource, created } = await fhir.create<Patient>({ resourceType: 'Patient' });
    expect(created).toBe(true);
    expect(resource.id).toBe('77');
  });

  it.each([
    ['weak (Medplum, HAPI)', 'W/"4"'],
    ['strong', '"4"'],
    ['bare', '4'],
  ])('reads the version from a %s ETag', async (_kind, etag) => {
    server = await startFakeServer(() => ({
      status: 200,
      headers: { etag },
      body: { resourceType: 'Patient', id: '1' },
    }));
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 1 });
    expect((await fhir.read<Patient>('Patient', '1')).meta?.versionId).toBe('4');
  });

  it('retries 503 with backoff and gives up with a typed error', async () => {
    server = await startFakeServer(() => ({ status: 503, body: outcome('transient', 'down') }));
    const fhir = new FhirClient({ baseUrl: server.baseUrl, maxAttempts: 3, retryBaseDelayMs: 5 });
    await expect(fhir.read('Patient', '1')).rejects.toBeInstanceOf(FhirUnavailableError);
    expect(server.requests).toHaveLength(3);
  });
});

describe('FhirClient authentication', () => {
  let server: FakeServer | undefined;
  let tokenServer: FakeServer | undefined;
  afterEach(async () => {
    await server?.close();
    await tokenServer?.close();
  });
  const ok = () => ({ status: 200, body: patient('1') });

  it('none sends no Authorization header', async () => {
    server = await startFakeServer(ok);
    await new FhirClient({ baseUrl: server.baseUrl }).read('Patient', '1');
    expect(server.requests[0].headers.authorization).toBeUndefined();
  });

  it('basic', async () => {
    server = await startFakeServer(ok);
    await new FhirClient({
      baseUrl: server.baseUrl,
      auth: { kind: 'basic', username: 'svc', password: 's3cret' },
    }).read('Patient', '1');
    expect(server.requests[0].headers.authorization).toBe(`Basic ${Buffer.from('svc:s3cret').toString('base64')}`);
  });

  it('bearer', async () => {
    server = await startFakeServer(ok);
    await new FhirClient({ baseUrl: server.baseUrl, auth: { kind: 'bearer', token: 'abc' } }).read('Patient', '1');
    expect(server.requests[0].headers.authorization).toBe('Bearer abc');
  });

  it('OAuth2 client credentials: token fetched once, cached, and refreshed after a 401', async () => {
    let issued = 0;
    tokenServer = await startFakeServer(
      () => ({
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: { access_token: `token-${++issued}`, expires_in: 3600 },
      }),
      '/oauth2/token',
    );
    let rejectNext = false;
    server = await startFakeServer((req) => {
      if (rejectNext && req.headers.authorization === 'Bearer token-1')
        return { status: 401, body: outcome('login', 'expired') };
      return ok();
    });
    const fhir = new FhirClient({
      baseUrl: server.baseUrl,
      auth: { kind: 'client-credentials', tokenUrl: tokenServer.baseUrl, clientId: 'cid', clientSecret: 'csecret' },
    });
    await fhir.read('Patient', '1');
    await fhir.read('Patient', '1');
    expect(issued).toBe(1);
    expect(tokenServer.requests[0].body).toContain('grant_type=client_credentials');
    expect(tokenServer.requests[0].body).toContain('client_id=cid');
    rejectNext = true; // the server revokes token-1
    await fhir.read('Patient', '1');
    expect(issued).toBe(2);
    expect(server.requests.at(-1)!.headers.authorization).toBe('Bearer token-2');
  });
});

describe('ifMatchFor', () => {
  it('makes the weak ETag from a versionId, and leaves an ETag as it is (never W/"W/"3"")', () => {
    expect(ifMatchFor('3')).toBe('W/"3"');
    expect(ifMatchFor('W/"3"')).toBe('W/"3"');
    expect(ifMatchFor('"3"')).toBe('W/"3"');
  });
});
