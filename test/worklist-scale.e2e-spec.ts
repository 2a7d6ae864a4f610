import request from 'supertest';
import type { BundleEntry, CarePlan, Task } from '@medplum/fhirtypes';
import { FhirClient } from '@kc/fhir';
import { ToDoIndex, WorklistIndex } from '@kc/worklist-index';
import { startTestService, type TestService } from './support/test-service';

const BASE = 'https://ketamine-careplans.example/fhir/PlanDefinition/';
const PROTOCOLS = ['ketamine-low-dose-series', 'ketamine-high-dose-as-needed', 'ketamine-monthly-maintenance'];
const STATE = 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans';
const KINDS = ['infusion-session', 'post-infusion-check', 'maintenance-booster'];
const OWNERS = ['Practitioner/nurse-a', 'Practitioner/nurse-b', 'CareTeam/night'];
const NOW = new Date();
const DAY = 86_400_000;

interface Expected {
  id: string;
  patient: string;
  protocol: string;
  kind: string;
  /** Task.owner's reference, or '-' for nobody's. */
  owner: string;
  start?: number;
  end?: number;
  overdue: boolean;
}

/**
 * Issue 10: the worklist is exact at any size. 3,600 Tasks (3,000 awaiting approval, the rest approved or done)
 * written straight to the FHIR server, the index reconciled from it (past the server's `_offset` limit), then every
 * page, order and filter compared with the answer computed here from the same Tasks; and the to-do list (the
 * approved ones not done) the same way.
 */
describe('worklist at scale: 3,000 open Tasks, exact order, filters and cursor paging', () => {
  let service: TestService;
  const expected: Expected[] = [];
  const expectedToDo: Expected[] = [];
  /** The patients' ids, in the order written. */
  const scalePatients: string[] = [];
  beforeAll(async () => {
    // Medplum's server refuses an `_offset` past its maxSearchOffset (10,000 by default); lowered here so that the
    // reconciliation's 3,000 drafts (pages of 1,000) reach past it: it must page by cursor, as it must on Medplum.
    service = await startTestService({ runWorker: false, fhirSandboxMaxSearchOffset: 1000 });
    // 40 patients on record (nothing is approved for a patient whose record is not: since session 48).
    const patients = await service.fhir.transaction(
      Array.from({ length: 40 }, (_, i): BundleEntry => ({
        resource: { resourceType: 'Patient', name: [{ family: `Scale ${i}` }] },
        request: { method: 'POST', url: 'Patient' },
      })),
    );
    scalePatients.push(...patients.entry!.map((e) => e.resource!.id!));
    const carePlans: { id: string; protocol: string; patient: string }[] = [];
    const planEntries: BundleEntry[] = [];
    for (let i = 0; i < 60; i++) {
      const protocol = PROTOCOLS[i % 3];
      const patient = `Patient/${scalePatients[i % 40]}`;
      planEntries.push({
        resource: {
          resourceType: 'CarePlan',
          status: 'active',
          intent: 'plan',
          subject: { reference: patient },
          instantiatesCanonical: [`${BASE}${protocol}|1.0.0`],
        },
        request: { method: 'POST', url: 'CarePlan' },
      });
    }
    const plans = await service.fhir.transaction(planEntries);
    plans.entry!.forEach((e) => {
      const plan = e.resource as CarePlan;
      carePlans.push({
        id: plan.id!,
        protocol: PROTOCOLS.find((p) => plan.instantiatesCanonical![0].includes(p))!,
        patient: plan.subject.reference!,
      });
    });
    // Deterministic spread: many equal starts (ties broken by end, then id), some without an end, some overdue.
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const tasks: Task[] = [];
    for (let i = 0; i < 3600; i++) {
      const plan = carePlans[rand(carePlans.length)];
      // Half a day off NOW, so no window ends between NOW and the moment a request is answered.
      const start = NOW.getTime() + DAY / 2 + (rand(60) - 20) * DAY;
      const end = rand(10) === 0 ? undefined : start + (1 + rand(5)) * DAY;
      const open = i < 3000;
      const markedOverdue = open && rand(7) === 0;
      // A fifth nobody's, the rest over two nurses and a care team (nurse-a twice as many as the others).
      const owner = OWNERS[rand(OWNERS.length + 2) % (OWNERS.length + 1)];
      tasks.push({
        resourceType: 'Task',
        status: open ? 'draft' : i % 2 ? 'ready' : 'completed',
        intent: 'plan',
        code: { coding: [{ system: STATE, code: KINDS[rand(KINDS.length)] }] },
        for: { reference: plan.patient },
        basedOn: [{ reference: `CarePlan/${plan.id}` }],
        description: `scale task ${i}`,
        ...(owner ? { owner: { reference: owner } } : {}),
        businessStatus: {
          coding: [{ system: STATE, code: markedOverdue ? 'overdue' : open ? 'awaiting-approval' : 'approved' }],
        },
        restriction: {
          period: { start: new Date(start).toISOString(), ...(end ? { end: new Date(end).toISOString() } : {}) },
        },
      });
    }
    for (let i = 0; i < tasks.length; i += 900) {
      const response = await service.fhir.transaction(
        tasks.slice(i, i + 900).map((resource) => ({ resource, request: { method: 'POST', url: 'Task' } })),
      );
      for (const entry of response.entry!) {
        const task = entry.resource as Task;
        if (task.status === 'completed') continue;
        const plan = carePlans.find((p) => `CarePlan/${p.id}` === task.basedOn![0].reference)!;
        const start = Date.parse(task.restriction!.period!.start!);
        const end = task.restriction!.period!.end ? Date.parse(task.restriction!.period!.end) : undefined;
        (task.status === 'draft' ? expected : expectedToDo).push({
          id: task.id!,
          patient: plan.patient,
          protocol: plan.protocol,
          kind: task.code!.coding![0].code!,
          owner: task.owner?.reference ?? '-',
          start,
          end,
          overdue: task.businessStatus!.coding![0].code === 'overdue' || (end !== undefined && end < NOW.getTime()),
        });
      }
    }
    // Written behind the service's back (another client): the reconciliation finds them.
    await service.app.get(WorklistIndex).rebuild();
    await service.app.get(ToDoIndex).rebuild();
  }, 120_000);
  afterAll(() => service.stop());

  const key = (v: number | undefined) => v ?? Number.MAX_SAFE_INTEGER;
  const order = (a: Expected, b: Expected) =>
    key(a.start) - key(b.start) || key(a.end) - key(b.end) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

  async function allPages(
    query: Record<string, string>,
    list = 'worklist',
  ): Promise<{ ids: string[]; total: number; pages: number }> {
    const ids: string[] = [];
    let next: string | undefined = `/${list}?${new URLSearchParams({ ...query, count: '100' }).toString()}`;
    let total = -1;
    let pages = 0;
    while (next) {
      const res: { body: { total: number; items: { id: string }[]; next?: string } } = await request(service.url)
        .get(next)
        .set(service.as('clinician'))
        .expect(200);
      total = res.body.total;
      ids.push(...res.body.items.map((i: { id: string }) => i.id));
      next = res.body.next;
      pages++;
      expect(pages).toBeLessThan(100);
    }
    return { ids, total, pages };
  }

  it('lists all 3,000 open Tasks, soonest due first, across 30 cursor pages', async () => {
    expect(expected).toHaveLength(3000);
    const { ids, total, pages } = await allPages({});
    expect(total).toBe(3000);
    expect(pages).toBe(30);
    expect(ids).toEqual([...expected].sort(order).map((e) => e.id));
  });

  it('filters exactly: patient, protocol, kind, owner, due-before, due-after, overdue, and combinations', async () => {
    const day = (offset: number) => new Date(NOW.getTime() + offset * DAY).toISOString();
    const cases: [Record<string, string>, (e: Expected) => boolean][] = [
      [{ patient: scalePatients[3] }, (e) => e.patient === `Patient/${scalePatients[3]}`],
      [{ protocol: 'ketamine-monthly-maintenance' }, (e) => e.protocol === 'ketamine-monthly-maintenance'],
      [{ 'due-before': day(5) }, (e) => e.start !== undefined && e.start <= Date.parse(day(5))],
      [{ 'due-after': day(10) }, (e) => e.end !== undefined && e.end >= Date.parse(day(10))],
      [{ overdue: 'true' }, (e) => e.overdue],
      [{ overdue: 'false' }, (e) => !e.overdue],
      // The filters the index decides by range (longest window, now, due-after) rather than member by member.
      [
        { overdue: 'true', 'due-after': day(-4) },
        (e) => e.overdue && e.end !== undefined && e.end >= Date.parse(day(-4)),
      ],
      [
        { overdue: 'true', 'due-after': day(6) },
        (e) => e.overdue && e.end !== undefined && e.end >= Date.parse(day(6)),
      ],
      [
        { overdue: 'false', 'due-before': day(-2) },
        (e) => !e.overdue && e.start !== undefined && e.start <= Date.parse(day(-2)),
      ],
      [
        { overdue: 'false', 'due-after': day(-10), 'due-before': day(30) },
        (e) =>
          !e.overdue &&
          e.end !== undefined &&
          e.end >= Date.parse(day(-10)) &&
          e.start !== undefined &&
          e.start <= Date.parse(day(30)),
      ],
      [
        { patient: scalePatients[11], overdue: 'true' },
        (e) => e.patient === `Patient/${scalePatients[11]}` && e.overdue,
      ],
      [{ kind: 'post-infusion-check' }, (e) => e.kind === 'post-infusion-check'],
      [{ owner: 'Practitioner/nurse-a' }, (e) => e.owner === 'Practitioner/nurse-a'],
      [{ owner: 'none', overdue: 'true' }, (e) => e.owner === '-' && e.overdue],
      [
        { owner: 'CareTeam/night', kind: 'maintenance-booster' },
        (e) => e.owner === 'CareTeam/night' && e.kind === 'maintenance-booster',
      ],
      [
        { kind: 'maintenance-booster', overdue: 'true', 'due-after': day(-4) },
        (e) => e.kind === 'maintenance-booster' && e.overdue && e.end !== undefined && e.end >= Date.parse(day(-4)),
      ],
      // Two of patient, kind and protocol: read from the entries of the narrower set.
      [
        { kind: 'infusion-session', protocol: 'ketamine-low-dose-series' },
        (e) => e.kind === 'infusion-session' && e.protocol === 'ketamine-low-dose-series',
      ],
      [
        { patient: scalePatients[5], kind: 'post-infusion-check' },
        (e) => e.patient === `Patient/${scalePatients[5]}` && e.kind === 'post-infusion-check',
      ],
      [
        { protocol: 'ketamine-low-dose-series', 'due-after': day(3) },
        (e) => e.protocol === 'ketamine-low-dose-series' && e.end !== undefined && e.end >= Date.parse(day(3)),
      ],
      [
        { patient: scalePatients[7], protocol: 'ketamine-low-dose-series', overdue: 'false' },
        (e) => e.patient === `Patient/${scalePatients[7]}` && e.protocol === 'ketamine-low-dose-series' && !e.overdue,
      ],
      [
        { protocol: 'ketamine-high-dose-as-needed', 'due-after': day(-3), 'due-before': day(20) },
        (e) =>
          e.protocol === 'ketamine-high-dose-as-needed' &&
          e.end !== undefined &&
          e.end >= Date.parse(day(-3)) &&
          e.start !== undefined &&
          e.start <= Date.parse(day(20)),
      ],
    ];
    for (const [query, match] of cases) {
      const want = expected
        .filter(match)
        .sort(order)
        .map((e) => e.id);
      const { ids, total } = await allPages(query);
      expect({ query, total, ids }).toEqual({ query, total: want.length, ids: want });
    }
  });

  it('the to-do list holds exactly the approved Tasks not done, in the same order, with the same filters', async () => {
    expect(expectedToDo.length).toBeGreaterThan(200);
    const cases: [Record<string, string>, (e: Expected) => boolean][] = [
      [{}, () => true],
      [{ kind: 'post-infusion-check' }, (e) => e.kind === 'post-infusion-check'],
      [{ owner: 'Practitioner/nurse-b' }, (e) => e.owner === 'Practitioner/nurse-b'],
      [{ owner: 'none' }, (e) => e.owner === '-'],
      [{ overdue: 'true' }, (e) => e.overdue],
      [
        { protocol: 'ketamine-monthly-maintenance', kind: 'infusion-session' },
        (e) => e.protocol === 'ketamine-monthly-maintenance' && e.kind === 'infusion-session',
      ],
    ];
    for (const [query, match] of cases) {
      const want = expectedToDo
        .filter(match)
        .sort(order)
        .map((e) => e.id);
      const { ids, total } = await allPages(query, 'to-do');
      expect({ query, total, ids }).toEqual({ query, total: want.length, ids: want });
    }
  });

  it('cursor paging is stable: approving a Task on page 1 does not shift page 2; the index follows the write', async () => {
    const first = await request(service.url).get('/worklist?count=50').set(service.as('clinician')).expect(200);
    const approved = first.body.items[0] as { id: string; versionId: string };
    // Approved through the API: the decision's write (through the service's FHIR client) updates the index.
    await request(service.url)
      .post(`/tasks/${approved.id}/$approve`)
      .set(service.as('clinician'))
      .set('If-Match', `W/"${approved.versionId}"`)
      .send({})
      .expect(200);
    const second = await request(service.url).get(first.body.next).set(service.as('clinician')).expect(200);
    const sorted = [...expected].sort(order).map((e) => e.id);
    expect(second.body.items.map((i: { id: string }) => i.id)).toEqual(sorted.slice(50, 100));
    const again = await request(service.url).get('/worklist?count=50').set(service.as('clinician')).expect(200);
    expect(again.body.total).toBe(2999);
    expect(again.body.items.map((i: { id: string }) => i.id)).not.toContain(approved.id);
  });

  it('a rebuild whose paging skipped a Task keeps it; a Task that left draft behind its back goes', async () => {
    const listed = async () => (await allPages({})).ids;
    const before = await listed();
    const [skipped, cancelled] = [before[10], before[20]];
    // Cancelled by another client: the service's index does not know yet.
    const task = await service.fhir.read<Task>('Task', cancelled);
    await service.fhir.update<Task>({ ...task, status: 'cancelled' });
    // The rebuild's search misses one draft Task, as offset paging does when a Task on an earlier page leaves
    // `draft` while the rebuild reads (an approval meanwhile).
    const client = service.app.get(FhirClient);
    const searchAll = client.searchAll.bind(client);
    const spy = jest.spyOn(client, 'searchAll').mockImplementationOnce(async (type, params) => {
      const found = await searchAll(type, params);
      expect(params).toMatchObject({ status: 'draft,on-hold' });
      return found.filter((t) => t.id !== skipped);
    });
    try {
      const result = await service.app.get(WorklistIndex).rebuild();
      expect(result.removed).toBe(1);
    } finally {
      spy.mockRestore();
    }
    const after = await listed();
    expect(after).toContain(skipped);
    expect(after).not.toContain(cancelled);
    expect(after).toEqual(before.filter((id) => id !== cancelled));
  });

  it('a bad cursor is a 400, not an unfiltered list', async () => {
    await request(service.url).get('/worklist?cursor=not-a-cursor').set(service.as('clinician')).expect(400);
    await request(service.url).get('/worklist?page=2').set(service.as('clinician')).expect(400);
  });
});
