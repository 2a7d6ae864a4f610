import request from 'supertest';
import type { Role } from '@kc/auth';
import { mintToken } from '@kc/auth';
import { completeInfusion, enrolPatient, followUpTasks, reportInfusion, waitFor } from '../support/clinic';
import { concretePath, registeredRoutes, type Route } from '../support/routes';
import { signWebhook, startTestService, TEST_JWT_SECRET, type TestService } from '../support/test-service';

/**
 * Issue 12: at least 1,000 generated bad requests over every route the app registers (so a new endpoint is fuzzed
 * without touching this file): hostile path segments, query strings, headers, tokens and bodies (prototype keys,
 * huge and deeply nested JSON, wrong types). No answer may be a 5xx, every error is an OperationOutcome, and the
 * service still answers afterwards. Seeded: a failure prints the seed and the request to replay.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20261124);
const REQUESTS = 1200;
const PARALLEL = 8;

function prng(seed: number) {
  let state = seed >>> 0;
  return () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];
const STRINGS = [
  ...PROTO_KEYS,
  '',
  ' ',
  '..',
  '../../etc/passwd',
  '%2e%2e%2f',
  "x' OR '1'='1",
  '<script>alert(1)</script>',
  '${7*7}',
  'Patient/1&_id=2',
  'a'.repeat(3000),
  '\u0000',
  '%00',
  '%ZZ',
  '😀',
  'W/"1"',
  '-1',
  '1e309',
  'NaN',
  'null',
  'Task/../Patient/1',
];

type Random = () => number;
const pick = <T>(random: Random, list: readonly T[]): T => list[Math.floor(random() * list.length)];

function hostileValue(random: Random, depth = 0): unknown {
  const roll = random();
  if (depth > 3 || roll < 0.3) return pick(random, [null, true, false, 0, -1, 1.5, 1e308, ...STRINGS]);
  if (roll < 0.45) return Array.from({ length: Math.floor(random() * 4) }, () => hostileValue(random, depth + 1));
  const object: Record<string, unknown> = {};
  for (let i = 0; i < 1 + Math.floor(random() * 4); i++)
    object[
      pick(random, [
        ...PROTO_KEYS,
        'resourceType',
        'id',
        'reason',
        'start',
        'end',
        'tasks',
        'procedure',
        'entry',
        'parameter',
      ])
    ] = hostileValue(random, depth + 1);
  return object;
}

function hostileBody(random: Random): { body: string; contentType: string } {
  const roll = random();
  if (roll < 0.05) return { body: '['.repeat(20_000) + ']'.repeat(20_000), contentType: 'application/json' };
  if (roll < 0.1)
    return {
      body: `{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}`,
      contentType: 'application/json',
    };
  if (roll < 0.13) return { body: JSON.stringify({ a: 'x'.repeat(2 * 1024 * 1024) }), contentType: 'application/json' };
  if (roll < 0.18) return { body: '{"resourceType":', contentType: 'application/fhir+json' };
  if (roll < 0.22) return { body: 'a=1&__proto__[x]=1', contentType: 'application/x-www-form-urlencoded' };
  if (roll < 0.26) return { body: '<xml/>', contentType: pick(random, ['application/xml', 'text/plain', 'image/png']) };
  return {
    body: JSON.stringify(hostileValue(random)) ?? 'null',
    contentType: pick(random, ['application/json', 'application/fhir+json', 'application/json-patch+json']),
  };
}

function hostileQuery(random: Random): string {
  if (random() < 0.4) return '';
  const pairs = Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
    const key = pick(random, [
      ...PROTO_KEYS,
      '_count',
      'patient',
      'status',
      '_getpages',
      'due-before',
      'cursor',
      'x[y]',
      'a[__proto__]',
    ]);
    return `${encodeURIComponent(key)}=${encodeURIComponent(String(pick(random, STRINGS)))}`;
  });
  return `?${pairs.join('&')}`;
}

describe('fuzz: generated bad requests to every endpoint', () => {
  let service: TestService;
  let ids: { task: string; carePlan: string };
  let tokens: string[];

  beforeAll(async () => {
    service = await startTestService();
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await reportInfusion(service, procedureId);
    const task = await waitFor(async () => (await followUpTasks(service, procedureId))[0], 'a follow-up task');
    ids = { task: task.id!, carePlan: enrolment.carePlanId };
    const noRole = await mintToken({ sub: 'nobody', roles: [] }, { secret: TEST_JWT_SECRET });
    tokens = [
      ...(['clinician', 'integration', 'admin'] as Role[]).map((r) => `Bearer ${service.tokens[r]}`),
      `Bearer ${noRole}`,
      'Bearer not.a.jwt',
      `Bearer ${service.tokens.admin}x`,
      'Basic YWRtaW46YWRtaW4=',
      'Bearer ',
      `Bearer ${'a'.repeat(9000)}`,
    ];
  }, 120_000);
  afterAll(() => service?.stop());

  it(`${REQUESTS} hostile requests: no 5xx, every error an OperationOutcome, still healthy (seed ${SEED})`, async () => {
    const routes: Route[] = registeredRoutes(service.app);
    expect(routes.length).toBeGreaterThan(25);
    const random = prng(SEED);
    const failures: string[] = [];
    const perRoute = new Map<string, number>();

    const oneRequest = async (n: number) => {
      const route = routes[n % routes.length];
      const path = concretePath(route.path, (param) => {
        const roll = random();
        if (roll < 0.35) return param === 'id' && route.path.startsWith('/careplans') ? ids.carePlan : ids.task;
        if (roll < 0.6) return pick(random, PROTO_KEYS);
        return encodeURIComponent(String(pick(random, STRINGS))) || 'x';
      });
      const url = `${path}${hostileQuery(random)}`;
      const { body, contentType } = hostileBody(random);
      let req = request(service.url)[route.method](url);
      // Mostly a token that passes, so the request reaches the handler; the rest probes authentication.
      const roll = random();
      const authorization =
        roll < 0.55 ? tokens[2] : roll < 0.75 ? pick(random, tokens.slice(0, 2)) : pick(random, [...tokens, undefined]);
      if (authorization) req = req.set('Authorization', authorization);
      if (random() < 0.3) req = req.set('If-Match', String(pick(random, STRINGS)).replace(/[^\x20-\x7e]/g, '?'));
      // Webhooks: half of them correctly signed, so the body is read.
      if (random() < 0.5) req = req.set('X-Signature', signWebhook(body));
      else if (random() < 0.2) req = req.set('X-Signature', 'f'.repeat(64));
      if (random() < 0.1) req = req.set('Prefer', 'return=representation; __proto__=1');
      const res = route.method === 'get' ? await req : await req.set('Content-Type', contentType).send(body);
      const key = `${route.method.toUpperCase()} ${route.path}`;
      perRoute.set(key, (perRoute.get(key) ?? 0) + 1);
      const replay = `#${n} ${route.method.toUpperCase()} ${url.slice(0, 200)} (${contentType}, ${body.length} bytes)`;
      if (res.status >= 500) failures.push(`${res.status} ${replay}`);
      const json = res.headers['content-type']?.includes('json');
      const outcome = (res.body as { resourceType?: string } | undefined)?.resourceType === 'OperationOutcome';
      if (res.status >= 400 && json && !outcome) failures.push(`${res.status} without OperationOutcome: ${replay}`);
    };

    for (let n = 0; n < REQUESTS; n += PARALLEL) {
      await Promise.all(Array.from({ length: Math.min(PARALLEL, REQUESTS - n) }, (_, i) => oneRequest(n + i)));
    }

    // Every route was tried many times, and the service still serves.
    expect([...perRoute.values()].every((count) => count >= 10)).toBe(true);
    expect(failures).toEqual([]);
    const health = await request(service.url).get('/health');
    expect(health.status).toBe(200);
    const worklist = await request(service.url).get('/worklist').set(service.as('clinician'));
    expect(worklist.status).toBe(200);
  }, 300_000);
});
