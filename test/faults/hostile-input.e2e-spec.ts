import request from 'supertest';
import { startBehindProxy, type FlakyProxy, type ServiceBehindProxy } from '../support/flaky-proxy';
import { signWebhook, startTestService, type TestService } from '../support/test-service';

interface Answer {
  resourceType?: string;
  issue?: { details?: { text?: string }; diagnostics?: string }[];
  entry?: { resource: { resourceType: string } }[];
}
const bodyOf = (res: request.Response) => res.body as Answer;

/**
 * Issue 12 items 5, 6, 8 and 9: prototype keys, malformed notification bodies, the paging pass-through, upstream
 * statuses and the order of signature check and parsing. The FHIR server sits behind a proxy that can answer for it.
 */
describe('hostile input and upstream answers', () => {
  let behind: ServiceBehindProxy<TestService>;
  let proxy: FlakyProxy;
  let service: TestService;
  const webhook = (body: string, signature = signWebhook(body)) =>
    request(service.url)
      .post('/webhooks/fhir')
      .set('Content-Type', 'application/fhir+json')
      .set('X-Signature', signature)
      .send(body);

  beforeAll(async () => {
    behind = await startBehindProxy((fhirBaseUrl) => startTestService({ fhirBaseUrl }));
    ({ proxy, service } = behind);
  });
  afterEach(() => {
    proxy.intercept = () => undefined;
  });
  afterAll(() => behind?.stop());

  it.each([
    '/fhir/constructor',
    '/fhir/__proto__',
    '/fhir/toString/x',
    '/fhir/hasOwnProperty',
    '/fhir/Task?__proto__=x',
  ])('%s is a 4xx OperationOutcome, never forwarded', async (path) => {
    const before = proxy.forwarded;
    const res = await request(service.url).get(path).set(service.as('integration'));
    expect(res.status).toBe(400);
    expect(bodyOf(res).resourceType).toBe('OperationOutcome');
    expect(proxy.forwarded).toBe(before);
  });

  it.each([
    ['{"entry":[null]}'],
    ['{}'],
    ['{"resourceType":"Bundle","entry":[null]}'],
    ['{"resourceType":"Bundle","entry":"x"}'],
    ['{"resourceType":"Bundle","entry":[{"resource":null},{"resource":[1]}]}'],
    ['[1,2,3]'],
    ['null'],
  ])('a signed notification %s is answered without a 5xx', async (body) => {
    const res = await webhook(body);
    expect(res.status).toBe(202);
    expect(bodyOf(res).resourceType).toBe('OperationOutcome');
  });

  it('a signed notification nested 100,000 deep, or not JSON at all, is a 400', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    for (const body of [deep, '{"resourceType":"Bundle","entry":[{"resource":' + deep + '}]}', '{not json']) {
      const res = await webhook(body);
      expect(res.status).toBe(400);
      expect(bodyOf(res).resourceType).toBe('OperationOutcome');
    }
  });

  it('any JSON endpoint refuses a body nested deeper than 64 levels with a 400', async () => {
    const deep = '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000);
    const res = await request(service.url)
      .post('/events/infusion-completed')
      .set(service.as('integration'))
      .set('Content-Type', 'application/json')
      .send(deep);
    expect(res.status).toBe(400);
    expect(bodyOf(res).issue?.[0].details?.text).toMatch(/deeper|deep/);
  });

  it('checks the signature before reading the body: an unsigned malformed body is 401, not 400', async () => {
    const res = await webhook('{not json', 'f'.repeat(64));
    expect(res.status).toBe(401);
    const unsignedDeep = await webhook('['.repeat(50_000), '0'.repeat(64));
    expect(unsignedDeep.status).toBe(401);
  });

  it('a paging link never returns entries of a type the caller may not read', async () => {
    proxy.intercept = (method, path) =>
      path.includes('_getpages=')
        ? {
            status: 200,
            body: {
              resourceType: 'Bundle',
              type: 'searchset',
              entry: [
                { resource: { resourceType: 'Patient', id: 'someone', name: [{ family: 'Secret' }] } },
                { resource: { resourceType: 'Task', id: 't1', status: 'draft', intent: 'plan' } },
                { resource: { resourceType: 'Observation', id: 'o1', status: 'final', code: {} } },
              ],
            },
          }
        : undefined;
    const res = await request(service.url)
      .get('/fhir/Task?_getpages=abc&_getpagesoffset=20&_count=20')
      .set(service.as('integration'));
    expect(res.status).toBe(200);
    expect(bodyOf(res).entry?.map((e) => e.resource.resourceType)).toEqual(['Task']);
    expect(JSON.stringify(res.body)).not.toContain('Secret');
  });

  it.each([
    [404, 404],
    [410, 410],
    [400, 400],
    [422, 422],
    [401, 502],
    [500, 502],
    [429, 503],
  ])('the FHIR server answering %i reaches the client as %i with its own issue', async (upstream, expected) => {
    proxy.intercept = (method, path) =>
      method === 'GET' && path.includes('/Task/upstream-probe')
        ? {
            status: upstream,
            body: {
              resourceType: 'OperationOutcome',
              issue: [{ severity: 'error', code: 'processing', details: { text: `upstream said ${upstream}` } }],
            },
          }
        : undefined;
    const res = await request(service.url).get('/fhir/Task/upstream-probe').set(service.as('integration'));
    expect(res.status).toBe(expected);
    expect(bodyOf(res).resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(res.body)).not.toContain('Bad request body');
    if (expected < 500) expect(JSON.stringify(res.body)).toContain(`upstream said ${upstream}`);
    if (expected === 503) expect(res.headers['retry-after']).toBeDefined();
  });
});
