import request from 'supertest';
import type { Resource } from '@medplum/fhirtypes';
import type { Role } from '@kc/auth';
import { actionOf, completeInfusion, enrolPatient, followUpJobDone, followUpTasks, waitFor } from './support/clinic';
import { startTestService, type TestService } from './support/test-service';

/** Deterministic pseudo-random numbers, so a failing case can be replayed. */
function prng(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

const HOSTILE_STRINGS = [
  '',
  ' ',
  '../../etc/passwd',
  '..%2F..%2Fmetadata',
  "x' OR '1'='1",
  '<script>alert(1)</script>',
  '${7*7}',
  '{{7*7}}',
  'Patient/1&_id=2',
  'Patient/1?_include=*',
  'a'.repeat(5000),
  '\u0000',
  '%00',
  '😀',
  'W/"1"',
  '-1',
  '1e309',
  'null',
  'undefined',
];
const HOSTILE_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  [],
  [null],
  {},
  { $gt: '' },
  { __proto__: { admin: true } },
  ...HOSTILE_STRINGS,
];

describe('hostile and malformed input: always 4xx, never 5xx, never a change', () => {
  let service: TestService;
  let taskId: string;
  let checkId: string;
  let carePlanId: string;

  beforeAll(async () => {
    service = await startTestService();
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    carePlanId = enrolment.carePlanId;
    const procedureId = await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z');
    await request(service.url)
      .post('/events/infusion-completed')
      .set(service.as('integration'))
      .send({ procedure: `Procedure/${procedureId}` })
      .expect(202);
    // The job also fulfils the first-session Task after writing the follow-ups: wait for all of it.
    await followUpJobDone(service, procedureId);
    taskId = (await waitFor(async () => (await followUpTasks(service, procedureId))[0], 'a follow-up task')).id!;
    checkId = (await followUpTasks(service, procedureId)).find((t) => actionOf(t) === 'post-infusion-check')!.id!;
  });
  afterAll(() => service.stop());

  /** Every Task, CarePlan, Provenance and DetectedIssue with its version: what must not change. */
  async function snapshot(): Promise<string[]> {
    const all = await Promise.all(
      [
        'Task',
        'CarePlan',
        'Provenance',
        'DetectedIssue',
        'MedicationRequest',
        'QuestionnaireResponse',
        'Observation',
      ].map((type) => service.fhir.searchAll<Resource>(type as 'Task', { _count: 200 })),
    );
    return all
      .flat()
      .map((r) => `${r.resourceType}/${r.id}/${r.meta?.versionId}`)
      .sort();
  }

  function endpoints(): { method: 'post' | 'get' | 'put'; path: string; role: Role }[] {
    return [
      { method: 'post', path: `/tasks/${taskId}/$approve`, role: 'clinician' },
      { method: 'post', path: `/tasks/${taskId}/$reject`, role: 'clinician' },
      { method: 'post', path: `/tasks/${taskId}/$reschedule`, role: 'clinician' },
      { method: 'post', path: '/tasks/$bulk-approve', role: 'clinician' },
      { method: 'post', path: `/tasks/${checkId}/$complete`, role: 'clinician' },
      { method: 'post', path: `/careplans/${carePlanId}/$activate`, role: 'clinician' },
      { method: 'post', path: '/fhir/PlanDefinition/ketamine-low-dose-series/$apply', role: 'clinician' },
      { method: 'post', path: '/fhir/PlanDefinition/$apply', role: 'integration' },
      { method: 'post', path: '/events/infusion-completed', role: 'integration' },
      { method: 'post', path: '/webhooks/fhir', role: 'integration' },
      { method: 'put', path: '/webhooks/fhir/Procedure/x', role: 'integration' },
    ];
  }

  /** Answers to the check: hostile values where items, answers and values go (any version: none is current). */
  function hostileAnswers(random: () => number): unknown {
    const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)];
    return {
      versionId: pick([...HOSTILE_VALUES, '1']),
      response: pick([
        pick(HOSTILE_VALUES),
        { resourceType: 'QuestionnaireResponse', item: pick(HOSTILE_VALUES) },
        {
          resourceType: 'QuestionnaireResponse',
          item: [{ linkId: pick(HOSTILE_STRINGS), answer: pick(HOSTILE_VALUES) }],
        },
        {
          resourceType: 'QuestionnaireResponse',
          item: [
            {
              linkId: 'pain-now',
              answer: [{ valueInteger: pick(HOSTILE_VALUES), valueCoding: pick(HOSTILE_VALUES) }],
            },
          ],
        },
        {
          resourceType: 'QuestionnaireResponse',
          item: [{ linkId: 'effects', answer: [{ valueCoding: pick(HOSTILE_VALUES) }] }],
        },
        {
          resourceType: 'QuestionnaireResponse',
          item: [
            {
              linkId: 'a',
              item: [
                {
                  linkId: 'b',
                  item: [
                    {
                      linkId: 'c',
                      item: [{ linkId: 'd', item: [{ linkId: 'e', item: [{ linkId: 'f', item: [] }] }] }],
                    },
                  ],
                },
              ],
            },
          ],
        },
      ]),
    };
  }

  function hostileBody(random: () => number): unknown {
    const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)];
    switch (Math.floor(random() * 7)) {
      case 6:
        return hostileAnswers(random);
      case 0:
        return pick(HOSTILE_VALUES);
      case 1:
        return { versionId: pick(HOSTILE_VALUES), reason: pick(HOSTILE_VALUES), owner: pick(HOSTILE_VALUES) };
      case 2:
        return { versionId: 'stale', start: pick(HOSTILE_VALUES), end: pick(HOSTILE_VALUES) };
      case 3:
        return {
          resourceType: 'Parameters',
          parameter: [
            { name: 'subject', valueString: pick(HOSTILE_STRINGS) },
            { name: pick(HOSTILE_STRINGS), valueBoolean: pick(HOSTILE_VALUES) },
          ],
        };
      case 4:
        return {
          tasks: pick([
            [{ id: pick(HOSTILE_STRINGS), versionId: pick(HOSTILE_VALUES) }],
            pick(HOSTILE_VALUES),
            new Array(101).fill({ id: 'a', versionId: '1' }),
          ]),
        };
      default:
        return { procedure: pick(HOSTILE_VALUES), resourceType: pick(HOSTILE_STRINGS) };
    }
  }

  it('300 hostile requests to every mutating endpoint', async () => {
    const before = await snapshot();
    const random = prng(20261122);
    const failures: string[] = [];
    for (let i = 0; i < 300; i++) {
      const endpoint = endpoints()[i % endpoints().length];
      const body = hostileBody(random);
      const req = request(service.url)[endpoint.method](endpoint.path).set(service.as(endpoint.role));
      const raw = random() < 0.15;
      const json = JSON.stringify(body) ?? 'null';
      const res = await req.set('content-type', 'application/json').send(raw ? json.slice(0, -1) || '{' : json);
      if (res.status < 400 || res.status >= 500) {
        // A valid-looking webhook ping without credentials must still be refused; anything 2xx is a finding.
        failures.push(
          `${endpoint.method.toUpperCase()} ${endpoint.path} ${JSON.stringify(body)?.slice(0, 120)} -> ${res.status}`,
        );
      } else if (res.body?.resourceType !== 'OperationOutcome') {
        failures.push(`${endpoint.path} -> ${res.status} without an OperationOutcome`);
      }
    }
    expect(failures).toEqual([]);
    expect(await snapshot()).toEqual(before);
  }, 60_000);

  it('100 hostile answers to the check on its current version: each a 400 naming the problem, nothing written', async () => {
    const before = await snapshot();
    const { meta } = await service.fhir.read<Resource>('Task', checkId);
    const random = prng(20261203);
    const failures: string[] = [];
    for (let i = 0; i < 100; i++) {
      const body = {
        ...(hostileBody(() => (random() < 0.5 ? 6.5 / 7 : random())) as object),
        versionId: meta!.versionId,
      };
      const res = await request(service.url)
        .post(`/tasks/${checkId}/$complete`)
        .set(service.as('clinician'))
        .send(body);
      if (res.status !== 400 || res.body?.resourceType !== 'OperationOutcome')
        failures.push(`${JSON.stringify(body).slice(0, 160)} -> ${res.status}`);
    }
    expect(failures).toEqual([]);
    expect(await snapshot()).toEqual(before);
  }, 60_000);

  it('hostile query strings and ids on the read endpoints', async () => {
    const before = await snapshot();
    const paths = [
      ...HOSTILE_STRINGS.filter(Boolean).map((s) => `/fhir/Task/${encodeURIComponent(s)}`),
      ...HOSTILE_STRINGS.map((s) => `/fhir/Task?patient=${encodeURIComponent(s)}`),
      ...HOSTILE_STRINGS.map((s) => `/worklist?patient=${encodeURIComponent(s)}`),
      ...HOSTILE_STRINGS.map((s) => `/worklist?due-before=${encodeURIComponent(s)}`),
      '/worklist?count=0',
      '/worklist?count=101',
      '/worklist?page=-1',
      '/worklist?overdue=maybe',
      '/worklist?_id=1',
      ...HOSTILE_STRINGS.map((s) => `/to-do?patient=${encodeURIComponent(s)}`),
      ...HOSTILE_STRINGS.map((s) => `/to-do?kind=${encodeURIComponent(s)}`),
      ...HOSTILE_STRINGS.map((s) => `/to-do/view?name=${encodeURIComponent(s)}`),
      '/to-do?count=101',
      '/fhir/Task?_count=-5',
      '/fhir/CarePlan?_include=*',
      '/fhir/Task?status[$ne]=x',
      '/protocols/..%2F..%2Fetc',
    ];
    const failures: string[] = [];
    for (const path of paths) {
      const res = await request(service.url).get(path).set(service.as('clinician'));
      // A search for an id nobody has is a fine question with an empty answer; anything else must be refused.
      const emptyAnswer =
        res.status === 200 &&
        (res.body.entry ?? res.body.items ?? []).length === 0 &&
        /[?&](patient|due-before|name)=/.test(path);
      if (res.status >= 500 || (res.status < 400 && !emptyAnswer))
        failures.push(`GET ${path.slice(0, 100)} -> ${res.status}`);
    }
    expect(failures).toEqual([]);
    expect(await snapshot()).toEqual(before);
  }, 60_000);

  it('a body over the size limit is a 413, not a crash', async () => {
    const res = await request(service.url)
      .post('/fhir/PlanDefinition/$apply')
      .set(service.as('clinician'))
      .send({ resourceType: 'Parameters', junk: 'x'.repeat(2 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('wrong content types are refused', async () => {
    const res = await request(service.url)
      .post(`/tasks/${taskId}/$approve`)
      .set(service.as('clinician'))
      .set('content-type', 'text/plain')
      .send('versionId=1');
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });
});
