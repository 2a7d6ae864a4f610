import request from 'supertest';
import type { Task } from '@medplum/fhirtypes';
import { ToDoIndex } from '@kc/worklist-index';
import { actionOf, completeInfusion, enrolPatient, reportInfusion } from './support/clinic';
import { checkAnswers } from './support/checks';
import { startTestService, type TestService } from './support/test-service';

const DAY = 86_400_000;

interface ListItem {
  id: string;
  patient?: string;
  kind?: string;
  businessStatus?: string;
  versionId?: string;
  due?: { start?: string; end?: string };
  overdue: boolean;
}

interface ListPage {
  total: number;
  items: ListItem[];
  next?: string;
}

/**
 * The to-do list: what a clinician approved and nobody has done yet (an approved post-infusion check to make, an
 * approved infusion to give), soonest due first, with the worklist's filters and cursor paging. Approved Tasks left
 * the worklist and, before this list, could only be found one patient at a time.
 */
describe('GET /to-do: approved Tasks not yet done', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.stop());

  const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();

  /** A patient infused `daysAgo` days ago: its post-infusion check, awaiting approval. */
  async function infused(daysAgo: number) {
    const enrolment = await enrolPatient(service, 'ketamine-high-dose-as-needed', {
      startDate: iso((daysAgo + 7) * DAY).slice(0, 10),
    });
    const procedureId = await completeInfusion(service, enrolment, iso(daysAgo * DAY));
    await reportInfusion(service, procedureId);
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${enrolment.carePlanId}` });
    const check = tasks.find((t) => actionOf(t) === 'post-infusion-check' && t.status === 'draft');
    if (!check) throw new Error('the infusion left no check');
    return { ...enrolment, check };
  }

  const get = async (path: string, query: Record<string, string> = {}) =>
    (await request(service.url).get(path).query(query).set(service.as('clinician')).expect(200)).body as ListPage;

  const decide = async (task: Task, decision: 'approve' | 'reject', extra: Record<string, string> = {}) =>
    (
      await request(service.url)
        .post(`/tasks/${task.id}/$${decision}`)
        .set(service.as('clinician'))
        .send({ versionId: task.meta!.versionId, ...extra })
        .expect(200)
    ).body as Task;

  const checksToDo = async () =>
    (await get('/to-do', { kind: 'post-infusion-check', count: '100' })).items.map((i) => i.id);

  it('an approved check leaves the worklist for the to-do list, soonest due first, until it is recorded or rejected', async () => {
    const earlier = await infused(4);
    const later = await infused(1);
    expect(await checksToDo()).toEqual([]);

    const approvedLater = await decide(later.check, 'approve');
    const approvedEarlier = await decide(earlier.check, 'approve');
    // Off the worklist, on the to-do list: the earlier infusion's check first, whatever the order of approval.
    const worklist = await get('/worklist', { patient: earlier.patient, count: '100' });
    expect(worklist.items.map((i) => i.id)).not.toContain(earlier.check.id);
    expect(await checksToDo()).toEqual([earlier.check.id, later.check.id]);
    const [first] = (await get('/to-do', { patient: earlier.patient })).items;
    expect(first).toMatchObject({
      id: earlier.check.id,
      kind: 'post-infusion-check',
      businessStatus: 'approved',
      versionId: approvedEarlier.meta!.versionId,
      overdue: false,
    });
    // Only approved Tasks: the boosters and sessions awaiting approval are not on it.
    const all = await get('/to-do', { count: '100' });
    expect(all.items.map((i) => i.id).sort()).toEqual([earlier.check.id, later.check.id].sort());

    // Paged by cursor: one a page, the next link carries the query.
    const page1 = await get('/to-do', { kind: 'post-infusion-check', count: '1' });
    expect(page1.total).toBe(2);
    expect(page1.items.map((i) => i.id)).toEqual([earlier.check.id]);
    const next = new URL(page1.next!, 'http://x');
    expect(next.pathname).toBe('/to-do');
    const page2 = await get('/to-do', Object.fromEntries(next.searchParams));
    expect(page2.items.map((i) => i.id)).toEqual([later.check.id]);
    expect(page2.next).toBeUndefined();

    // Recorded: done, off the list.
    await request(service.url)
      .post(`/tasks/${earlier.check.id}/$complete`)
      .set(service.as('clinician'))
      .send({
        versionId: approvedEarlier.meta!.versionId,
        response: checkAnswers(3, ['effect-none'], { peg: [3, 3, 3] }),
      })
      .expect(200);
    expect(await checksToDo()).toEqual([later.check.id]);

    // Rejected after approval (its request cancelled): off the list too.
    await decide(approvedLater, 'reject', { reason: 'Patient moved to another clinic' });
    expect(await checksToDo()).toEqual([]);
  });

  it('the clinician page reads it decorated, without the approval notices', async () => {
    const p = await infused(2);
    await decide(p.check, 'approve');
    const view = await get('/to-do/view', { patient: p.patient });
    expect(view.items.map((i) => i.id)).toEqual([p.check.id]);
    const [item] = view.items as (ListItem & { view: { task: { label: string; answers?: string } } })[];
    expect(item.view.task).toEqual({ label: 'Post-infusion check', answers: 'Post-infusion check' });
    expect(item.view).not.toHaveProperty('reminderNotice');
  });

  it('approvals and completions written by an EHR straight to the FHIR server are caught by reconciliation and notifications', async () => {
    const p = await infused(3);
    // The EHR approves the check itself, on the FHIR server: this service did not see the write.
    const approvedByEhr = await service.fhir.update<Task>({
      ...p.check,
      status: 'ready',
      businessStatus: {
        coding: [{ system: 'https://ketamine-careplans.example/fhir/CodeSystem/ketamine-careplans', code: 'approved' }],
      },
    });
    expect(await checksToDo()).not.toContain(p.check.id);
    // The periodic reconciliation (WORKLIST_RECONCILE_MS) re-reads every ready Task.
    await service.app.get(ToDoIndex).rebuild();
    expect(await checksToDo()).toContain(p.check.id);

    // The EHR marks it done; its Subscription tells the service (HAPI style: the id, read back).
    await service.fhir.update<Task>({ ...approvedByEhr, status: 'completed' });
    await request(service.url)
      .put(`/webhooks/fhir/Task/${p.check.id}`)
      .set('x-webhook-token', 'test-webhook-secret')
      .expect(202);
    expect(await checksToDo()).not.toContain(p.check.id);
  });

  it('takes the worklist filters, refuses unknown ones, and asks for a clinician', async () => {
    const p = await infused(2);
    await decide(p.check, 'approve');
    const due = p.check.restriction!.period!;
    const inWindow = await get('/to-do', { 'due-after': due.end!, 'due-before': due.end! });
    expect(inWindow.items.map((i) => i.id)).toContain(p.check.id);
    const after = await get('/to-do', { 'due-after': new Date(Date.parse(due.end!) + DAY).toISOString() });
    expect(after.items.map((i) => i.id)).not.toContain(p.check.id);
    expect((await get('/to-do', { patient: p.patient, kind: 'maintenance-booster' })).items).toEqual([]);
    expect((await get('/to-do', { patient: p.patient, overdue: 'true' })).items).toEqual([]);

    const refused = await request(service.url)
      .get('/to-do')
      .query({ kind: 'reminder-fasting' })
      .set(service.as('clinician'))
      .expect(400);
    expect(refused.body).toMatchObject({ resourceType: 'OperationOutcome' });
    expect(refused.body.issue[0].details.text).toBe(
      'kind must be one of patient-instructions, infusion-session, maintenance-booster, post-infusion-check',
    );
    await request(service.url).get('/to-do').query({ sort: 'due' }).set(service.as('clinician')).expect(400);
    await request(service.url).get('/to-do').expect(401);
    await request(service.url).get('/to-do').set(service.as('integration')).expect(403);
  });
});
