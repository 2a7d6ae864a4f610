import request from 'supertest';
import type { CarePlan, DetectedIssue } from '@medplum/fhirtypes';
import { FollowUpService } from '../apps/worker/src/followups/follow-up.service';
import { actionOf, completeInfusion, followUpTasks } from './support/clinic';
import { enrolNamedPatient, infusedThenStopped, score } from './support/clinician';
import { startTestService, type TestService } from './support/test-service';
import { createsOf } from './fixtures/patient-data';

interface ViewItem {
  id: string;
  versionId: string;
  patient: string;
  carePlan: string;
  kind: string;
  description?: string;
  due: { start: string; end: string };
  allowedWindow: { start: string; end: string };
  overdue: boolean;
  view: {
    patient: { name: string; age: number; birthDate: string };
    protocol: { id: string; title: string; phase?: string };
    task: { label: string };
    contraindications: { id: string; text: string; state: string; severity: string; evidence: string[] }[];
    scores: { code: string; label: string; value: number; date: string }[];
    blocked?: string;
    planClosed?: string;
  };
}

function ageToday(birthDate: string): number {
  const now = new Date();
  const [y, m, d] = birthDate.split('-').map(Number);
  return (
    now.getUTCFullYear() -
    y -
    (now.getUTCMonth() + 1 < m || (now.getUTCMonth() + 1 === m && now.getUTCDate() < d) ? 1 : 0)
  );
}

describe('GET /worklist/view and GET /patients/{id}/timeline: what the clinician page shows, as JSON', () => {
  let service: TestService;
  let lena: Awaited<ReturnType<typeof enrolNamedPatient>>;

  beforeAll(async () => {
    service = await startTestService();
    lena = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Lena',
      family: 'Ortiz',
      birthDate: '1980-05-02',
    });
    await enrolNamedPatient(service, 'ketamine-monthly-maintenance', {
      given: 'Omar',
      family: 'Haddad',
      birthDate: '1969-12-30',
    });
    await score(service, lena.patient, '72514-3', 7, '2026-10-01T09:00:00Z');
    await score(service, lena.patient, '72514-3', 5, '2026-11-01T09:00:00Z');
    await score(service, lena.patient, '91148-7', 6, '2026-11-01T09:00:00Z');
    await score(service, lena.patient, '91147-9', 5.3, '2026-11-01T09:00:00Z');
    await score(service, lena.patient, '44261-6', 12, '2026-11-02T09:00:00Z');
    // A contraindication a clinician has overridden (so approvals go through) on Lena's plan.
    await service.fhir.create<DetectedIssue>({
      resourceType: 'DetectedIssue',
      status: 'final',
      severity: 'high',
      code: { text: 'Uncontrolled hypertension' },
      patient: { reference: lena.patient },
      implicated: [{ reference: `CarePlan/${lena.carePlanId}` }],
      evidence: [{ detail: [{ reference: 'Observation/bp-1', display: 'BP 185/112 mmHg (2026-10-20)' }] }],
      mitigation: [
        { action: { text: 'Override' }, date: '2026-11-03T10:00:00Z', author: { reference: 'Practitioner/dr-test' } },
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await service?.stop();
  });

  it('decorates each worklist item with patient name and age, protocol and phase, contraindications and latest scores', async () => {
    const res = await request(service.url)
      .get('/worklist/view')
      .query({ patient: lena.patientId })
      .set(service.as('clinician'))
      .expect(200);
    const items = res.body.items as ViewItem[];
    expect(items.length).toBeGreaterThan(0);
    const plain = await request(service.url)
      .get('/worklist')
      .query({ patient: lena.patientId })
      .set(service.as('clinician'));
    // The worklist's own item shape is kept as is; the view is added beside it.
    expect(items.map(({ view: _view, ...rest }) => rest)).toEqual(plain.body.items);
    for (const item of items) {
      expect(item.view.patient).toMatchObject({
        name: 'Lena Ortiz',
        birthDate: '1980-05-02',
        age: ageToday('1980-05-02'),
      });
      expect(item.view.protocol).toMatchObject({
        id: 'ketamine-low-dose-series',
        title: expect.stringMatching(/low-dose/i),
      });
      // The enrolment's session is the induction's first; patient instructions belong to no phase.
      expect(item.view.protocol.phase).toBe(item.kind === 'patient-instructions' ? undefined : 'induction');
      expect(item.view.contraindications).toEqual([
        expect.objectContaining({
          text: 'Uncontrolled hypertension',
          state: 'overridden',
          severity: 'high',
          evidence: ['BP 185/112 mmHg (2026-10-20)'],
        }),
      ]);
      expect(item.view.scores).toEqual([
        expect.objectContaining({ code: '72514-3', label: 'Pain NRS', value: 5, date: '2026-11-01T09:00:00Z' }),
        // The PEG mean and the panel at the same time: the mean, listed first in fhir-profiles.
        expect.objectContaining({ code: '91147-9', label: 'PEG', value: 5.3 }),
        expect.objectContaining({ code: '44261-6', label: 'PHQ-9', value: 12 }),
      ]);
      expect(item.allowedWindow.start).toBeDefined();
    }
  });

  it('warns before approval when a reminder would reach the patient with less notice than it needs', async () => {
    const ana = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Ana',
      family: 'Soon',
      birthDate: '1985-03-03',
    });
    // An infusion that ended 2 days less 2.5 hours ago: the next session's window (2-4 days after) opens in 2.5 hours,
    // so approving it now sends the fasting reminder (18 h before, 6 h needed) at once, with 2.5 hours' notice.
    const end = new Date(Date.now() - 2 * 86_400_000 + 2.5 * 3600_000);
    const procedure = await completeInfusion(service, ana, end.toISOString());
    await service.app.get(FollowUpService).handle(procedure);
    const items = (
      await request(service.url)
        .get('/worklist/view')
        .query({ patient: ana.patientId })
        .set(service.as('clinician'))
        .expect(200)
    ).body.items as (ViewItem & { action?: string; view: { reminderNotice?: string } })[];
    const next = items.find((i) => i.action === 'next-induction-session')!;
    expect(next.view.reminderNotice).toMatch(
      /^Approving now sends “Reminder: nothing to eat or drink for 6 hours before” 2 h (2\d|30) min before the window opens; it needs 6 hours of notice\.$/,
    );
    // The post-infusion check's reminder needs no notice; the first session's window is weeks away.
    expect(items.filter((i) => i.view.reminderNotice).map((i) => i.action)).toEqual(['next-induction-session']);
  });

  it('says why a Task of a stopped or paused plan cannot be approved; others say nothing', async () => {
    const stopped = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Nora',
      family: 'Stopped',
      birthDate: '1990-01-01',
    });
    const carePlan = await service.fhir.read<CarePlan>('CarePlan', stopped.carePlanId);
    await service.fhir.update<CarePlan>({ ...carePlan, status: 'revoked' });
    const view = async (patientId: string) =>
      (
        await request(service.url)
          .get('/worklist/view')
          .query({ patient: patientId })
          .set(service.as('clinician'))
          .expect(200)
      ).body.items as ViewItem[];
    const items = await view(stopped.patientId);
    expect(items.length).toBeGreaterThan(0);
    for (const item of items) expect(item.view.blocked).toBe('its care plan was stopped (revoked)');
    for (const item of await view(lena.patientId)) expect(item.view.blocked).toBeUndefined();
  });

  it("a stopped plan's infusion already given keeps its post-infusion check approvable; its next session is not", async () => {
    const infused = await infusedThenStopped(service, { given: 'Ines', family: 'Infused', birthDate: '1985-03-04' });
    const items = (
      await request(service.url)
        .get('/worklist/view')
        .query({ patient: infused.patientId })
        .set(service.as('clinician'))
        .expect(200)
    ).body.items as (ViewItem & { action: string })[];
    expect(Object.fromEntries(items.map((i) => [i.action, i.view.blocked ?? i.view.planClosed]))).toEqual({
      'patient-instructions': 'its care plan was stopped (revoked)',
      'next-induction-session': 'its care plan was stopped (revoked)',
      'post-infusion-check': 'Its care plan was stopped (revoked): the check of the infusion given is still due',
    });
  });

  it("a monthly protocol's enrolment session is its initial series (induction); patients without scores have none", async () => {
    const res = await request(service.url)
      .get('/worklist/view')
      .query({ protocol: 'ketamine-monthly-maintenance' })
      .set(service.as('clinician'))
      .expect(200);
    const items = res.body.items as ViewItem[];
    expect(items.length).toBeGreaterThan(0);
    expect(items.filter((i) => i.kind === 'infusion-session').map((i) => i.view.protocol.phase)).toEqual(['induction']);
    for (const item of items) {
      expect(item.view.patient.name).toBe('Omar Haddad');
      expect(item.view.scores).toEqual([]);
      expect(item.view.contraindications).toEqual([]);
    }
  });

  it('each follow-up says the phase its protocol action or its infusion belongs to, from the PlanDefinition', async () => {
    // Monthly protocol: an initial series of 2 sessions (induction), then a booster a month (maintenance).
    const ines = await enrolNamedPatient(service, 'ketamine-monthly-maintenance', {
      given: 'Ines',
      family: 'Moreau',
      birthDate: '1975-03-09',
    });
    const followUps = service.app.get(FollowUpService);
    const phases = async (procedureId: string) => {
      await followUps.handle(procedureId);
      const view = await request(service.url)
        .get('/worklist/view')
        .query({ patient: ines.patientId, count: 100 })
        .set(service.as('clinician'))
        .expect(200);
      const byId = new Map((view.body.items as ViewItem[]).map((i) => [i.id, i.view.protocol.phase]));
      const tasks = await followUpTasks(service, procedureId);
      return Object.fromEntries(tasks.map((t) => [actionOf(t), byId.get(t.id!)]));
    };
    const enrolment = { patient: ines.patient, carePlanId: ines.carePlanId };
    // The 1st infusion fulfils the enrolment's session: an induction infusion, so its check is too.
    expect(await phases(await completeInfusion(service, enrolment, '2027-01-04T10:00:00.000Z'))).toEqual({
      'next-induction-session': 'induction',
      'post-infusion-check': 'induction',
    });
    // The 2nd fulfils the next session (still induction); the booster it proposes is maintenance.
    expect(await phases(await completeInfusion(service, enrolment, '2027-01-07T10:00:00.000Z'))).toEqual({
      'maintenance-booster': 'maintenance',
      'post-infusion-check': 'induction',
    });
    // The 3rd fulfils that booster: a maintenance infusion, and its check says so.
    expect(await phases(await completeInfusion(service, enrolment, '2027-02-06T10:00:00.000Z'))).toEqual({
      'maintenance-booster': 'maintenance',
      'post-infusion-check': 'maintenance',
    });
  });

  it('searches patients by name, and pages by following the next link it returns', async () => {
    const byName = await request(service.url)
      .get('/worklist/view')
      .query({ name: 'ortiz' })
      .set(service.as('clinician'))
      .expect(200);
    expect(byName.body.items.length).toBeGreaterThan(0);
    expect((byName.body.items as ViewItem[]).every((i) => i.patient === lena.patient)).toBe(true);
    const nobody = await request(service.url)
      .get('/worklist/view')
      .query({ name: 'Nobody-by-this-name' })
      .set(service.as('clinician'))
      .expect(200);
    expect(nobody.body.items).toEqual([]);

    const seen: string[] = [];
    let link: string | undefined = '/worklist/view?count=1';
    while (link) {
      const page = await request(service.url).get(link).set(service.as('clinician')).expect(200);
      expect(page.body.items.length).toBeLessThanOrEqual(1);
      seen.push(...(page.body.items as ViewItem[]).map((i) => i.id));
      if (page.body.next) expect(page.body.next).toMatch(/\/worklist\/view\?/);
      link = page.body.next as string | undefined;
      expect(seen.length).toBeLessThan(50);
    }
    const all = await request(service.url).get('/worklist').query({ count: 100 }).set(service.as('clinician'));
    expect(seen).toEqual((all.body.items as ViewItem[]).map((i) => i.id));
  });

  it('a name many patients share lists the Tasks of every one of them, soonest due first, paged by its next link', async () => {
    const manyfold = (given: string, startDate: string) =>
      enrolNamedPatient(
        service,
        'ketamine-low-dose-series',
        { given, family: 'Manyfold', birthDate: '1975-03-04' },
        startDate,
      );
    const first = await manyfold('Ada', '2027-02-01');
    await service.fhir.transaction(
      createsOf(
        Array.from({ length: 45 }, (_, i) => ({
          resourceType: 'Patient' as const,
          name: [{ given: [`P${i}`], family: 'Manyfold' }],
        })),
      ),
    );
    // Matched past the first 20 (before, only their Tasks were read, with a request for more of the name).
    const last = await manyfold('Zoe', '2027-01-15');
    const seen: ViewItem[] = [];
    let link: string | undefined = '/worklist/view?name=manyfold&count=1';
    while (link) {
      const page = await request(service.url).get(link).set(service.as('clinician')).expect(200);
      expect(page.body).toMatchObject({ patientsMatched: 47, morePatients: false });
      expect(page.body.items.length).toBeLessThanOrEqual(1);
      seen.push(...(page.body.items as ViewItem[]));
      if (page.body.next) expect(page.body.next).toMatch(/^\/worklist\/view\?.*name=manyfold/);
      link = page.body.next as string | undefined;
      expect(seen.length).toBeLessThan(50);
    }
    const listOf = async (patient: string) =>
      (await request(service.url).get('/worklist').query({ patient, count: 100 }).set(service.as('clinician'))).body
        .items as ViewItem[];
    const expected = [...(await listOf(first.patient)), ...(await listOf(last.patient))].sort(
      (a, b) => Date.parse(a.due.start) - Date.parse(b.due.start) || (a.id < b.id ? -1 : 1),
    );
    expect(new Set(seen.map((i) => i.patient))).toEqual(new Set([first.patient, last.patient]));
    expect(seen.map((i) => i.id)).toEqual(expected.map((i) => i.id));
    expect(seen[0].patient).toBe(last.patient); // due first: its series starts sooner

    // Filters apply across them: the one patient's protocol, a due bound.
    const due = await request(service.url)
      .get('/worklist/view')
      .query({ name: 'manyfold', 'due-before': '2027-01-31' })
      .set(service.as('clinician'))
      .expect(200);
    expect(due.body.total).toBeGreaterThan(0);
    expect((due.body.items as ViewItem[]).every((i) => i.patient === last.patient)).toBe(true);
  });

  it('a name more patients share than it reads lists the first 500 and asks for more of the name', async () => {
    await service.fhir.transaction(
      createsOf(
        Array.from({ length: 501 }, (_, i) => ({
          resourceType: 'Patient' as const,
          name: [{ given: [`C${i}`], family: 'Crowdwell' }],
        })),
      ),
    );
    const common = await request(service.url)
      .get('/worklist/view')
      .query({ name: 'crowdwell' })
      .set(service.as('clinician'))
      .expect(200);
    expect(common.body).toMatchObject({ patientsMatched: 500, morePatients: true });
    const narrow = await request(service.url)
      .get('/worklist/view')
      .query({ name: 'ortiz' })
      .set(service.as('clinician'))
      .expect(200);
    expect(narrow.body).toMatchObject({ patientsMatched: 1, morePatients: false });
  });

  it('needs a clinician and valid parameters', async () => {
    await request(service.url).get('/worklist/view').expect(401);
    await request(service.url).get('/worklist/view').set(service.as('integration')).expect(403);
    await request(service.url).get('/worklist/view').query({ name: '' }).set(service.as('clinician')).expect(400);
    await request(service.url).get('/worklist/view').query({ sort: 'x' }).set(service.as('clinician')).expect(400);
    await request(service.url).get('/patients/bad id/timeline').set(service.as('clinician')).expect(400);
    await request(service.url).get('/patients/no-such-patient/timeline').set(service.as('clinician')).expect(404);
  });

  it('the patient timeline lists infusions, follow-ups, contraindications and decisions with who made them', async () => {
    const list = await request(service.url)
      .get('/worklist')
      .query({ patient: lena.patientId })
      .set(service.as('clinician'));
    const [first] = list.body.items as ViewItem[];
    await request(service.url)
      .post(`/tasks/${first.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: first.versionId })
      .expect(200);
    await completeInfusion(service, lena, '2027-01-04T10:00:00.000Z');
    const res = await request(service.url)
      .get(`/patients/${lena.patientId}/timeline`)
      .set(service.as('clinician'))
      .expect(200);
    expect(res.body.patient).toMatchObject({ name: 'Lena Ortiz', age: ageToday('1980-05-02') });
    expect(res.body.carePlans).toEqual([
      expect.objectContaining({ id: lena.carePlanId, title: expect.stringMatching(/low-dose/i) }),
    ]);
    const events = res.body.events as {
      type: string;
      text: string;
      who?: string;
      reference: string;
      date?: string;
      status?: string;
    }[];
    expect(events.filter((e) => e.type === 'infusion')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'follow-up').map((e) => e.reference)).toContain(`Task/${first.id}`);
    // Statuses in words, as the page shows them (the business status's display), not codes.
    expect(events.find((e) => e.reference === `Task/${first.id}`)).toMatchObject({ status: 'approved' });
    expect(events.filter((e) => e.type === 'follow-up').map((e) => e.status)).toContain('awaiting clinician approval');
    expect(events.find((e) => e.type === 'contraindication')?.text).toBe('Contraindication: Uncontrolled hypertension');
    const decision = events.find((e) => e.type === 'decision');
    expect(decision).toMatchObject({
      who: 'Dr Test',
      text: `Decision: approve ${first.description}`,
    });
    const dates = events.map((e) => Date.parse(e.date ?? '9999'));
    expect([...dates].sort((a, b) => a - b)).toEqual(dates);
  });
});
