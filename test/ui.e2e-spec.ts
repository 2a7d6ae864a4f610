import * as fs from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import request from 'supertest';
import type {
  Appointment,
  CarePlan,
  CommunicationRequest,
  MedicationAdministration,
  MedicationRequest,
  PlanDefinition,
  Procedure,
  Provenance,
  QuestionnaireResponse,
  Task,
} from '@medplum/fhirtypes';
import { protocolWindowOf } from '@kc/protocols';
import { sessionApprovedJobId, taskChangedInEhrJobId } from '@kc/queue';
import { orderKeySearch } from '@kc/task-states';
import { PlanDefinitions } from '@kc/nest-core';
import { ToDoIndex, WorklistIndex } from '@kc/worklist-index';
import { AppointmentBookings } from '../apps/worker/src/bookings/appointment-bookings.service';
import { ChecksDoneElsewhere } from '../apps/worker/src/checks/checks-done-elsewhere.service';
import { FollowUpService } from '../apps/worker/src/followups/follow-up.service';
import { InfusionsInError } from '../apps/worker/src/maintenance/infusions-in-error';
import { ClosedOrderReviews } from '../apps/worker/src/maintenance/closed-order-reviews';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { OpenTasksReader } from '../apps/worker/src/maintenance/open-tasks';
import { PausedPlanHolds } from '../apps/worker/src/maintenance/paused-plan-holds';
import { ReminderDelivery } from '../apps/worker/src/reminders/reminder-delivery.service';
import {
  actionOf,
  applyPlan,
  completeInfusion,
  enrolPatient,
  followUpTasks,
  maintenanceJobDone,
  mergedIntoNewRecord,
  orderedInEhrFor,
  postWebhook,
  waitFor,
} from './support/clinic';
import {
  chartedNamingNoPlan,
  DEV_ISSUER,
  enrolNamedPatient,
  infusedThenStopped,
  launchChromium,
  score,
  signInOnPage,
} from './support/clinician';
import { checkAnswers } from './support/checks';
import { ehrOrderLike, ehrReplacementOf, infusionDosage } from './fixtures/orders';
import { startTestService, type TestService } from './support/test-service';
import { activeCondition, bodyWeight, createsOf, PREGNANCY } from './fixtures/patient-data';

/** The worklist filtered by a patient's name: the first page, soonest due first, holds every earlier test's patients. */
async function filteredByName(page: Page, name: string): Promise<void> {
  await page.fill('#f-name', name);
  await page.click('#filters button[type=submit]');
  await page.waitForSelector(`#worklist[data-query*="name=${name}"]`);
}

/** Writes a screenshot and checks a real image file came out (the assertions are on the DOM; this is the record). */
async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync('test-results', { recursive: true });
  const file = `test-results/${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
  const bytes = fs.readFileSync(file);
  expect(bytes.subarray(1, 4).toString()).toBe('PNG');
  expect(bytes.length).toBeGreaterThan(5000);
}

describe('clinician page in a real browser', () => {
  let service: TestService;
  let browser: Browser;

  beforeAll(async () => {
    // CHROMIUM_PATH, else /usr/bin/chromium, else the Chromium that npm install brought (@sparticuz/chromium).
    service = await startTestService({ oidc: DEV_ISSUER });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await service?.stop();
  });

  /** Answers the open check dialog (pain now, then the three PEG items; one effect) and sends it. */
  async function answerCheckDialog(page: Page, numbers: string[], effect: string) {
    const questions = ['pain-now', 'peg-average-pain', 'peg-enjoyment-of-life', 'peg-general-activity'];
    for (const [i, id] of questions.entries()) await page.fill(`#q-${id}`, numbers[i]);
    await page.check(`#check-questions input[value="${effect}"]`);
    await page.click('#check-confirm');
  }

  /** A patient's Tasks awaiting approval, and among them the infusion session (the one authorising a MedicationRequest). */
  async function awaitingApproval(patient: string) {
    const tasks = await service.fhir.searchAll<Task>('Task', { patient, status: 'draft' });
    return { tasks, session: tasks.find((t) => t.focus?.reference?.startsWith('MedicationRequest/'))! };
  }

  /** Clicks a row's Approve; an infusion's dialog (its rate per kg) is confirmed as proposed. */
  async function approveOnPage(page: Page, taskId: string) {
    await page.click(`tr[data-task-id="${taskId}"] button:has-text("Approve")`);
    if (await page.locator('#approve-dialog[open]').isVisible()) await page.click('#approve-confirm');
  }

  /**
   * A named patient enrolled and their first session approved on the page (its row gone to the to-do list); the page
   * left open, and the Task still awaiting approval beside it.
   */
  async function firstSessionApprovedOnPage(patient: { given: string; family: string; birthDate: string }) {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', patient);
    const { tasks, session } = await awaitingApproval(enrolled.patient);
    const waiting = tasks.find((t) => t.id !== session.id)!;
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await approveOnPage(page, session.id!);
    await page.waitForSelector(`tr[data-task-id="${session.id}"]`, { state: 'detached' });
    return { enrolled, session, waiting, page };
  }

  /** The session approved on the EHR's order: it names that order (basedOn), and no order was written here. */
  async function expectApprovedOnEhrOrder(session: Task, ehrOrder: MedicationRequest) {
    const approved = await service.fhir.read<Task>('Task', session.id!);
    expect(approved.status).toBe('ready');
    expect(approved.basedOn?.map((b) => b.reference)).toContain(`MedicationRequest/${ehrOrder.id}`);
    expect(
      await service.fhir.searchAll<MedicationRequest>('MedicationRequest', { identifier: orderKeySearch(session.id!) }),
    ).toEqual([]);
  }

  /** A session approved through the API (its order written), as by a clinician elsewhere. */
  async function approvedThroughApi(session: Task, body: object = {}): Promise<Task> {
    const approved = await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: session.meta!.versionId, ...body })
      .expect(200);
    return approved.body as Task;
  }

  /** The page's to-do list, filtered to infusion sessions. */
  async function showToDoInfusions(page: Page) {
    await page.click('#list-to-do');
    await page.selectOption('#f-kind', 'infusion-session');
    await page.click('#filters button[type=submit]');
  }

  /** The post-infusion check among `tasks`, approved through the API (so it is on the to-do list). */
  async function approvedCheck(tasks: Task[]): Promise<Task> {
    const check = tasks.find((t) => actionOf(t) === 'post-infusion-check')!;
    await request(service.url)
      .post(`/tasks/${check.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: check.meta!.versionId })
      .expect(200);
    return check;
  }

  async function followUps(start: string) {
    const enrolment = await enrolPatient(service, 'ketamine-low-dose-series');
    const procedureId = await completeInfusion(service, enrolment, start);
    await service.app.get(FollowUpService).handle(procedureId);
    return { enrolment, tasks: await followUpTasks(service, procedureId) };
  }

  /**
   * The worklist from a day on (its due filter): a test's own follow-ups, due after its infusion, rather than the first
   * page of every Task the earlier tests left awaiting approval (a page holds 50).
   */
  async function showDueFrom(page: Page, start: string) {
    await page.fill('#f-due-after', start.slice(0, 10));
    await page.click('#filters button[type=submit]');
  }

  it('shows the worklist, approves one task and rejects another with a reason', async () => {
    const {
      tasks: [check, next],
    } = await followUps('2027-01-04T10:00:00.000Z');

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await page.waitForSelector(`tr[data-task-id="${check.id}"]`);
    expect(await page.textContent('#message')).toMatch(/\d+ tasks? awaiting approval/);

    await approveOnPage(page, check.id!);
    await page.waitForSelector(`tr[data-task-id="${check.id}"]`, { state: 'detached' });
    expect(await page.textContent('#message')).toMatch(/^Approved/);

    await page.click(`tr[data-task-id="${next.id}"] button:has-text("Reject")`);
    await page.waitForSelector('#reject-dialog[open]');
    // The reason is required: an empty one is not sent.
    await page.click('#reject-confirm');
    expect(await page.getAttribute('#reject-reason', 'aria-invalid')).toBe('true');
    expect(await page.textContent('#reject-error')).toBe('A reason is required to reject a task.');
    await page.fill('#reject-reason', 'No longer needed');
    await page.click('#reject-confirm');
    await page.waitForSelector(`tr[data-task-id="${next.id}"]`, { state: 'detached' });
    expect(await page.textContent('#message')).toMatch(/^Rejected/);

    await waitFor(
      async () => (await service.fhir.read<Task>('Task', check.id!)).status === 'ready',
      'approval on the server',
    );
    const rejected = await service.fhir.read<Task>('Task', next.id!);
    expect(rejected.status).toBe('rejected');
    expect(rejected.statusReason?.text).toBe('No longer needed');
    await screenshot(page, 'worklist');
    await page.close();
  }, 60_000);

  it('tells the clinician when someone else decided first', async () => {
    const {
      tasks: [task],
    } = await followUps('2027-02-04T10:00:00.000Z');
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await page.waitForSelector(`tr[data-task-id="${task.id}"]`);
    // Another clinician approves it meanwhile.
    await service.fhir.update({ ...task, status: 'ready' }, { ifMatch: task.meta!.versionId });
    await approveOnPage(page, task.id!);
    await page.waitForSelector('#message.error');
    expect(await page.textContent('#message')).toMatch(/Someone else changed this task first/);
    await page.close();
  }, 60_000);

  it('says so when the token is wrong', async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/ui`);
    // The page's start-up is still running after the load event: wait until it has shown the signed-out page, or it
    // may read the token set below itself (and drop it on the 401) before the reload does.
    await page.waitForSelector('#message:has-text("Sign in to see the worklist.")');
    await page.evaluate(() =>
      sessionStorage.setItem(
        'kc-session',
        JSON.stringify({ accessToken: 'not-a-token', expiresAt: Date.now() + 60_000 }),
      ),
    );
    await page.reload();
    await page.waitForSelector('#message.error');
    expect(await page.textContent('#message')).toMatch(/token is missing, invalid or expired/);
    expect(await page.isHidden('#worklist')).toBe(true);
    expect(await page.isVisible('#sign-in')).toBe(true);
    await page.close();
  }, 30_000);

  it('shows patient name and age, protocol and phase, due window, overdue, contraindications and scores; filters', async () => {
    const rosa = await enrolNamedPatient(service, 'ketamine-monthly-maintenance', {
      given: 'Rosa',
      family: 'Delgado',
      birthDate: '1971-08-15',
    });
    await score(service, rosa.patient, '72514-3', 6, '2026-11-10T09:00:00Z');
    await score(service, rosa.patient, '44261-6', 9, '2026-11-10T09:00:00Z');
    // One of her tasks' window has closed: overdue.
    const drafts = await service.fhir.searchAll<Task>('Task', { patient: rosa.patient, status: 'draft' });
    const late = drafts.find((t) => t.code?.coding?.[0]?.code === 'infusion-session')!;
    await service.fhir.update<Task>({
      ...late,
      restriction: { ...late.restriction, period: { start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' } },
    });
    // Written straight to the FHIR server, as an EHR would: the worklist's read model sees it at reconciliation.
    await service.app.get(WorklistIndex).rebuild();

    const page = await browser.newPage();
    await signInOnPage(page, service);
    const row = page.locator(`tr[data-task-id="${late.id}"]`);
    await row.waitFor();
    expect(await row.locator('.patient-link').textContent()).toBe('Rosa Delgado');
    expect(await row.locator('.age').textContent()).toMatch(/^\d+ years$/);
    // The monthly protocol's first session opens its initial series.
    expect(await row.locator('.phase').textContent()).toBe('induction');
    expect(await row.getAttribute('class')).toContain('is-overdue');
    expect(await row.locator('.badge.overdue').textContent()).toBe('Overdue');
    // A window of whole days is shown as its days: this one is 1 January, midnight to midnight.
    expect(await row.locator('td.due').textContent()).toContain('2026-01-01');
    expect(await row.locator('td.due').textContent()).not.toContain('2026-01-02');
    expect(await row.locator('td.scores').textContent()).toBe('Pain NRS 6 (2026-11-10); PHQ-9 9 (2026-11-10)');
    // Each score's day on one line, however narrow the column.
    for (const at of await row.locator('td.scores .nowrap').all())
      expect(await at.evaluate((e) => e.getClientRects().length)).toBe(1);
    expect(await row.locator('td.scores .nowrap').count()).toBe(2);
    expect(await row.locator('td.contraindications').textContent()).toBe('None on record');
    // Accessible names on every action.
    expect(await row.locator('button:has-text("Approve")').getAttribute('aria-label')).toMatch(
      /^Approve .+ for Rosa Delgado$/,
    );

    // Filters: overdue only, then protocol, then patient name.
    await page.selectOption('#f-overdue', 'true');
    await page.click('#filters button[type=submit]');
    await page.waitForSelector('#worklist[data-query*="overdue=true"]');
    expect(await page.locator('#worklist tbody tr:not(.is-overdue)').count()).toBe(0);
    expect(await page.locator('#worklist tbody tr').count()).toBe(1);
    await page.selectOption('#f-overdue', '');
    await page.selectOption('#f-protocol', 'ketamine-monthly-maintenance');
    await filteredByName(page, 'Delgado');
    const names = await page.locator('#worklist tbody .patient-link').allTextContents();
    expect(names.length).toBeGreaterThan(0);
    expect(new Set(names)).toEqual(new Set(['Rosa Delgado']));
    await screenshot(page, 'worklist-filtered');

    // A name more than 20 patients share: the Tasks of every one of them (before, of the first 20 only, and the page
    // asked for more of the name: this patient's sessions were not listed).
    await service.fhir.transaction(
      createsOf(
        Array.from({ length: 21 }, (_, i) => ({
          resourceType: 'Patient' as const,
          name: [{ given: [`P${i}`], family: 'Sharedname' }],
        })),
      ),
    );
    await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Nia',
      family: 'Sharedname',
      birthDate: '1988-08-08',
    });
    await page.selectOption('#f-protocol', '');
    await filteredByName(page, 'sharedname');
    const shared = await page.locator('#worklist tbody .patient-link').allTextContents();
    expect(shared.length).toBeGreaterThan(0);
    expect(new Set(shared)).toEqual(new Set(['Nia Sharedname']));
    expect(await page.textContent('#message')).toBe(
      `${shared.length} task${shared.length === 1 ? '' : 's'} awaiting approval`,
    );
    await screenshot(page, 'worklist-common-name');
    await page.close();
  }, 60_000);

  /**
   * A patient enrolled on the EHR's own copy of the series (posted, applied by its id): the patient, the protocol as
   * posted, and the first session awaiting approval.
   */
  async function enrolledOnEhrSeries(name: { given: string; family: string; birthDate: string }) {
    const series = JSON.parse(
      fs.readFileSync(`${__dirname}/../fhir-profiles/PlanDefinition-ketamine-low-dose-series.json`, 'utf8'),
    ) as PlanDefinition;
    const { resource: posted } = await service.fhir.create<PlanDefinition>({
      ...series,
      id: undefined,
      url: `http://ehr.example/PlanDefinition/series-${Date.now()}`,
      version: '1',
    });
    const { patient } = await enrolNamedPatient(service, posted.id!, name);
    const [session] = (await service.fhir.searchAll<Task>('Task', { patient, status: 'draft' })).filter(
      (t) => actionOf(t) === 'infusion-session',
    );
    return { posted, session };
  }

  /** The protocol deleted on the FHIR server. */
  async function deleted(posted: PlanDefinition) {
    const res = await fetch(`${service.config.fhirBaseUrl}/PlanDefinition/${posted.id}`, { method: 'DELETE' });
    expect(res.ok).toBe(true);
  }

  it('a Task whose protocol is gone from the FHIR server says it cannot be approved, and offers only Reject', async () => {
    const { posted, session: task } = await enrolledOnEhrSeries({
      given: 'Gus',
      family: 'Goneprotocol',
      birthDate: '1970-01-01',
    });
    await deleted(posted);

    const page = await browser.newPage();
    await signInOnPage(page, service);
    const row = page.locator(`tr[data-task-id="${task.id}"]`);
    await row.waitFor();
    expect(await row.locator('.badge.blocked').textContent()).toBe(
      'Cannot be approved: its protocol is not found any more, so the patient cannot be checked again: reject it, or have the protocol posted again',
    );
    expect(await row.locator('td:last-child button').allTextContents()).toEqual(['Reject']);
    expect(await row.locator('input.select').isDisabled()).toBe(true);
    await screenshot(page, 'worklist-protocol-gone');
    await page.close();
  }, 60_000);

  it('an approved session whose protocol is gone since is held on the page, with the issue to override', async () => {
    const { posted, session } = await enrolledOnEhrSeries({
      given: 'Hal',
      family: 'Heldnoprotocol',
      birthDate: '1971-02-02',
    });
    await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: session.meta!.versionId })
      .expect(200);
    await deleted(posted);
    // As 30 s later, when the service reads the protocol again.
    service.app.get(PlanDefinitions).forget(`${posted.url}|1`);
    expect(await service.app.get(ContraindicationSweep).sweep()).toMatchObject({ held: 1 });

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Heldnoprotocol');
    const heldRow = page.locator(`tr[data-task-id="${session.id}"]`);
    await heldRow.waitFor();
    // Held after its approval: said once, with what holds it (not also "cannot be approved").
    expect(await heldRow.locator('td.task .badge.blocked').allTextContents()).toEqual([
      "Approved, now on hold: found after approval: Care plan’s protocol not found. Posting its care plan's protocol again on the FHIR server, or a clinician's override with a reason, releases it.",
    ]);
    expect(await heldRow.locator('td.contraindications').textContent()).toMatch(
      /Care plan’s protocol not found: unresolvedHolds 1 approved orderOverride/,
    );
    expect(await heldRow.locator('button').allTextContents()).toEqual(['Hal Heldnoprotocol', 'Override', 'Reject']);
    await screenshot(page, 'worklist-protocol-gone-held');
    await page.close();
  }, 60_000);

  it('a patient whose records the EHR merged: found by the name kept, the row says so, and the patient view shows the plan under the record merged away', async () => {
    const away = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Lena',
      family: 'Oldname',
      birthDate: '1984-02-02',
    });
    // Merged in the EHR into a record under her name now (FHIR's Patient/$merge); the plan stays under the old one.
    await mergedIntoNewRecord(service, away.patient, {
      name: [{ given: ['Lena'], family: 'Newname' }],
      birthDate: '1984-02-02',
    });

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Newname');
    // Before session 49 the search found no Task: they are under the record merged away.
    const rows = page.locator('#worklist tbody tr');
    expect(await rows.count()).toBeGreaterThan(0);
    expect(new Set(await page.locator('#worklist tbody .patient-link').allTextContents())).toEqual(
      new Set(['Lena Oldname']),
    );
    expect(await rows.first().locator('.badge.merged').textContent()).toBe(
      'Record merged in the EHR (now Lena Newname)',
    );
    await screenshot(page, 'worklist-merged-record');
    await rows.first().locator('.patient-link').click();
    await page.waitForSelector('#patient-view:not([hidden])');
    expect(await page.textContent('#patient-summary .badge.merged')).toBe(
      'This record was merged into another in the EHR (Lena Newname); its history there is shown here too.',
    );
    expect(await page.textContent('#careplans')).toMatch(/low-dose.*: draft, not yet activated$/i);
    await screenshot(page, 'patient-view-merged-record');
    await page.close();
  }, 60_000);

  // Since session 50: a plan past its end is completed once nothing under it is open; until then the view says why not.
  it('the patient view of a plan whose end has passed says it is completed once nothing under it is open', async () => {
    const ended = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Otto',
      family: 'Pastend',
      birthDate: '1970-04-04',
    });
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const carePlan = await service.fhir.read<CarePlan>('CarePlan', ended.carePlanId);
    await service.fhir.update<CarePlan>({
      ...carePlan,
      status: 'active',
      period: { start: '2026-10-01', end: yesterday },
    });

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Pastend');
    await page.locator('#worklist tbody .patient-link').first().click();
    await page.waitForSelector('#patient-view:not([hidden])');
    expect(await page.textContent('#careplans')).toMatch(
      new RegExp(
        `: active\\. Its end \\(${yesterday}, set in the EHR\\) has passed: it is completed once nothing under it is still open\\.$`,
        'i',
      ),
    );
    await screenshot(page, 'patient-view-plan-past-end');
    await page.close();
  }, 60_000);

  // Since session 53: records of one infusion minutes apart are one infusion, followed up once; the view says which.
  it('the patient view says which infusion was charted twice (the same infusion, followed up once)', async () => {
    const twice = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Tomas',
      family: 'Twicecharted',
      birthDate: '1975-05-05',
    });
    const first = await completeInfusion(service, twice, '2027-01-04T10:00:00Z');
    await service.app.get(FollowUpService).handle(first);
    // The nurse's record at the instant she charted it, 20 minutes after the pump's period ended.
    const { resource: charted } = await service.fhir.create<Procedure>({
      ...(await service.fhir.read<Procedure>('Procedure', first)),
      id: undefined,
      meta: undefined,
      performedPeriod: undefined,
      performedDateTime: '2027-01-04T10:20:00Z',
    });
    expect(await service.app.get(FollowUpService).handle(charted.id!)).toMatchObject({ status: 'ignored' });

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Twicecharted');
    await page.locator('#worklist tbody .patient-link').first().click();
    await page.waitForSelector('#patient-view:not([hidden])');
    const infusions = await page.locator('#timeline li[data-type=infusion]').allTextContents();
    expect(infusions).toEqual([
      expect.stringMatching(/^2027-01-04 10:00 infusionInfusion done: Intravenous infusion \[completed\]$/),
      expect.stringMatching(
        /^2027-01-04 10:20 infusionInfusion done: Intravenous infusion \[completed\]: charted twice: the same infusion as the one charted 2027-01-04 09:00 \.\. 2027-01-04 10:00 \(UTC\), followed up once$/,
      ),
    ]);
    await screenshot(page, 'patient-view-charted-twice');
    await page.close();
  }, 60_000);

  it('a Task whose plan an EHR paused says it cannot be approved, and offers only Reject', async () => {
    const paused = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Ida',
      family: 'Paused',
      birthDate: '1975-03-03',
    });
    const carePlan = await service.fhir.read<CarePlan>('CarePlan', paused.carePlanId);
    await service.fhir.update<CarePlan>({ ...carePlan, status: 'on-hold' });
    const [task] = await service.fhir.searchAll<Task>('Task', { patient: paused.patient, status: 'draft' });

    const page = await browser.newPage();
    await signInOnPage(page, service);
    const row = page.locator(`tr[data-task-id="${task.id}"]`);
    await row.waitFor();
    expect(await row.locator('.badge.blocked').textContent()).toBe('Cannot be approved: its care plan is on hold');
    expect(await row.locator('td:last-child button').allTextContents()).toEqual(['Reject']);
    expect(await row.locator('input.select').isDisabled()).toBe(true);
    // "Select all" leaves it out of a bulk approval.
    await page.check('#select-all');
    expect(await row.locator('input.select').isChecked()).toBe(false);
    expect(await page.locator('#worklist tbody input.select:checked').count()).toBeGreaterThan(0);
    await screenshot(page, 'worklist-plan-paused');
    await page.close();
  }, 60_000);

  // Since session 52: the patient was given the ketamine, so its check is due whatever becomes of the course.
  it('a plan the EHR stopped after an infusion: its next session cannot be approved, its post-infusion check can', async () => {
    const infused = await infusedThenStopped(service, {
      given: 'Olga',
      family: 'Stoppedafter',
      birthDate: '1972-02-02',
    });
    const { tasks, session } = await awaitingApproval(infused.patient);
    const check = tasks.find((t) => t.code?.coding?.[0]?.code === 'post-infusion-check')!;

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Stoppedafter');
    const sessionRow = page.locator(`tr[data-task-id="${session.id}"]`);
    const checkRow = page.locator(`tr[data-task-id="${check.id}"]`);
    await checkRow.waitFor();
    expect(await sessionRow.locator('.badge.blocked').textContent()).toBe(
      'Cannot be approved: its care plan was stopped (revoked)',
    );
    expect(await checkRow.locator('.badge.blocked').count()).toBe(0);
    expect(await checkRow.locator('.badge.plan-closed').textContent()).toBe(
      'Its care plan was stopped (revoked): the check of the infusion given is still due',
    );
    expect(await checkRow.locator('td:last-child button').allTextContents()).toContain('Approve');
    await screenshot(page, 'worklist-check-outlives-plan');
    await approveOnPage(page, check.id!);
    await checkRow.waitFor({ state: 'detached' });
    expect((await service.fhir.read<Task>('Task', check.id!)).status).toBe('ready');
    await page.close();
  }, 60_000);

  it('an approved session whose plan an EHR paused: on the to-do list, not to be given now, its order held', async () => {
    const paused = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Ines',
      family: 'Pausedafter',
      birthDate: '1976-04-04',
    });
    const { session } = await awaitingApproval(paused.patient);
    await approvedThroughApi(session);
    const carePlan = await service.fhir.read<CarePlan>('CarePlan', paused.carePlanId);
    await service.fhir.update<CarePlan>({ ...carePlan, status: 'on-hold' });
    // The sweep (or the plan's notification) holds its order.
    const open = await service.app.get(OpenTasksReader).read({ 'based-on': `CarePlan/${paused.carePlanId}` });
    expect(await service.app.get(PausedPlanHolds).hold(open)).toBe(1);

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showToDoInfusions(page);
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.waitFor();
    expect(await row.locator('.badge.blocked').textContent()).toBe('Not to be given now: its care plan is on hold');
    // Nothing under it can be decided but a rejection (the server would refuse a dose change or a reschedule).
    expect(await row.locator('td:last-child button').allTextContents()).toEqual(['Reject', 'Take']);
    await screenshot(page, 'to-do-plan-paused');
    await page.close();
  }, 60_000);

  /** A named patient's first infusion session, approved through the API, and the order its approval wrote. */
  async function approvedSessionOf(name: { given: string; family: string; birthDate: string }) {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', name);
    const { session } = await awaitingApproval(enrolled.patient);
    await approvedThroughApi(session);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    return { session, order };
  }

  /** The session's row on a signed-in clinician's to-do list of infusions, once shown. */
  async function toDoRowOf(session: Task) {
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showToDoInfusions(page);
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.waitFor();
    return { page, row };
  }

  it('an approved session whose order the EHR replaced but left open: the to-do list says there are two orders to give', async () => {
    const { session, order } = await approvedSessionOf({
      given: 'Tessa',
      family: 'Twoorders',
      birthDate: '1981-03-03',
    });
    // The EHR's dose change, its cancel of the order approved here never sent.
    await service.fhir.create<MedicationRequest>(ehrReplacementOf(order, infusionDosage(0.75, 60)));

    const { page, row } = await toDoRowOf(session);
    expect(await row.locator('.order-status').textContent()).toBe(
      'Also open for this session: 0.75 mg/kg/h (60 mg/h), ordered in the EHR. Two orders to give: cancel one in the EHR',
    );
    await screenshot(page, 'to-do-two-orders-to-give');
    await page.close();
  });

  it('an approved session whose order the EHR cancelled: on the to-do list, no order to give, and no dose to change', async () => {
    const { session, order } = await approvedSessionOf({
      given: 'Otto',
      family: 'Ordercancelled',
      birthDate: '1977-05-05',
    });
    await service.fhir.update<MedicationRequest>({
      ...order,
      status: 'cancelled',
      statusReason: { text: 'Patient unwell' },
    });

    const { page, row } = await toDoRowOf(session);
    expect(await row.locator('.order-status').textContent()).toBe(
      'No order to give: its order was cancelled (Patient unwell)',
    );
    expect(await row.locator('td:last-child button').allTextContents()).not.toContain('Change dose');
    await screenshot(page, 'to-do-order-cancelled-in-ehr');

    // The worker judges the order (notified or polled, after ORDER_CHANGE_GRACE_MS): nothing replaced it, so the
    // session is back with the clinician, saying why, to approve again or reject.
    expect(await service.app.get(ClosedOrderReviews).forOrder(order.id!)).toEqual({ returned: 1 });
    await page.click('#list-worklist');
    await page.click('#filters button[type=submit]');
    const back = page.locator(`tr[data-task-id="${session.id}"]`);
    await back.waitFor();
    expect(await back.locator('.badge.attention').textContent()).toBe(
      'Its order was cancelled in the EHR (Patient unwell): approve it again to order the session, or reject it',
    );
    expect(await back.locator('td:last-child button').allTextContents()).toContain('Approve');
    await screenshot(page, 'worklist-order-cancelled-in-ehr');
    await page.close();
  }, 60_000);

  it('a session the EHR has already ordered: Approve offers to approve it on the EHR’s order, which writes none', async () => {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Olga',
      family: 'Orderedtwice',
      birthDate: '1979-06-06',
    });
    const { session } = await awaitingApproval(enrolled.patient);
    const { ehrOrder, proposal } = await orderedInEhrFor(service, session);
    // And one with no time set (not refused: it may be another session's), which the row mentions too.
    await service.fhir.create(ehrOrderLike(proposal));

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Orderedtwice');
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.waitFor();
    // Before Approve is clicked, the row says what the EHR has.
    expect(await row.locator('.ehr-orders').textContent()).toMatch(
      /^Already ordered in the EHR for this session's time: Ketamine .*, ordered by Dr EHR\. The EHR has an open order of this drug with no time set: Ketamine .*, no time set, ordered by Dr EHR; check it is not this session's\.$/,
    );
    await screenshot(page, 'worklist-ordered-in-ehr');
    await approveOnPage(page, session.id!);
    await page.locator('#ordered-dialog[open]').waitFor();
    expect(await page.textContent('#ordered-text')).toMatch(
      new RegExp(
        `^Already ordered outside this care plan for this session's time: .*ordered by Dr EHR\\. Approving would order the session twice`,
      ),
    );
    await screenshot(page, 'approve-ordered-in-ehr');
    expect(await page.locator('#ordered-choices button').allTextContents()).toEqual([
      'Approve on the EHR’s order (it is this session’s)',
      'Approve and order it here as well',
    ]);
    await page.click('#ordered-choices button:has-text("Approve on the EHR’s order (it is this session’s)")');
    await page.locator(`tr[data-task-id="${session.id}"]`).waitFor({ state: 'detached' });
    await expectApprovedOnEhrOrder(session, ehrOrder);
    await page.close();
  }, 60_000);

  it('a session another of the patient’s plans has approved for the same days: Approve says so, and approves beside it only when asked', async () => {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Tomas',
      family: 'Twoplans',
      birthDate: '1971-03-03',
    });
    const { session: seriesSession } = await awaitingApproval(enrolled.patient);
    await approvedThroughApi(seriesSession);
    const maintenance = await applyPlan(service, 'ketamine-monthly-maintenance', enrolled.patient);
    const { session } = await awaitingApproval(enrolled.patient);
    expect(session.basedOn?.[0].reference).toBe(`CarePlan/${maintenance.id}`);

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Twoplans');
    await page.locator(`tr[data-task-id="${session.id}"]`).waitFor();
    await approveOnPage(page, session.id!);
    await page.locator('#ordered-dialog[open]').waitFor();
    expect(await page.textContent('#ordered-title')).toBe('Already approved under another care plan');
    expect(await page.textContent('#ordered-text')).toMatch(
      /^Another care plan of this patient has a session approved for days this one's window shares: .*approved in the ketamine care plan/,
    );
    // Not the EHR's order, so not "this session's": only beside it, or not at all.
    expect(await page.locator('#ordered-choices button').allTextContents()).toEqual([
      'Approve and order it here as well',
    ]);
    await screenshot(page, 'approve-beside-other-plan');
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('draft');
    await page.click('#ordered-choices button');
    await page.locator(`tr[data-task-id="${session.id}"]`).waitFor({ state: 'detached' });
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('ready');
    await page.close();
  }, 60_000);

  it('a reschedule into days another of the patient’s plans has a session approved for: the page asks, and reschedules it there only when asked', async () => {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Ines',
      family: 'Twoplans',
      birthDate: '1968-08-08',
    });
    const { session: seriesSession } = await awaitingApproval(enrolled.patient);
    const seriesApproved = await approvedThroughApi(seriesSession);
    await applyPlan(service, 'ketamine-monthly-maintenance', enrolled.patient);
    const { session } = await awaitingApproval(enrolled.patient);
    // The maintenance session moved to the first day the series' approved session is due.
    const day = seriesApproved.restriction!.period!.start!.slice(0, 10);
    expect(Date.parse(day)).toBeGreaterThanOrEqual(Date.parse(protocolWindowOf(session)!.start!.slice(0, 10)));

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Twoplans');
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.locator('button:has-text("Reschedule")').click();
    await page.waitForSelector('#reschedule-dialog[open]');
    await page.fill('#rs-start', day);
    await page.fill('#rs-end', day);
    await page.fill('#rs-rate', '1');
    await page.click('#reschedule-confirm');
    await page.locator('#ordered-dialog[open]').waitFor();
    expect(await page.textContent('#ordered-title')).toBe('Already approved under another care plan');
    expect(await page.textContent('#ordered-text')).toMatch(
      /^Another care plan of this patient has a session approved for days this one's window shares: .*Rescheduling it there would order two infusions/,
    );
    expect(await page.locator('#ordered-choices button').allTextContents()).toEqual(['Reschedule it there as well']);
    await screenshot(page, 'reschedule-beside-other-plan');
    expect((await service.fhir.read<Task>('Task', session.id!)).meta!.versionId).toBe(session.meta!.versionId);
    await page.click('#ordered-choices button');
    await row.waitFor({ state: 'detached' });
    expect(await page.textContent('#message')).toMatch(/^Rescheduled/);
    const task = await service.fhir.read<Task>('Task', session.id!);
    expect(task.businessStatus?.coding?.[0].code).toBe('rescheduled');
    expect(task.restriction?.period?.start).toBe(`${day}T00:00:00.000Z`);
    await page.close();
  }, 60_000);

  it('a pregnancy recorded after enrolment: Approve is refused saying why, and the row then lists it', async () => {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Nora',
      family: 'Expecting',
      birthDate: '1990-05-05',
    });
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], enrolled.patient));
    const { session } = await awaitingApproval(enrolled.patient);

    const page = await browser.newPage();
    await signInOnPage(page, service);
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.waitFor();
    expect(await row.locator('td.contraindications').textContent()).toBe('None on record');
    await approveOnPage(page, session.id!);
    await page.waitForSelector('#message.error');
    expect(await page.textContent('#message')).toMatch(/contraindication.*Pregnancy/i);
    await row.locator('td.contraindications li.ci-unresolved').waitFor();
    expect(await row.locator('td.contraindications li.ci-unresolved').first().textContent()).toMatch(
      /[^.]: unresolved/,
    );
    expect(await row.locator('td.contraindications').textContent()).toMatch(/Pregnancy.*: unresolved/);
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('draft');
    await screenshot(page, 'worklist-contraindicated-at-approval');
    await page.close();
  }, 60_000);

  it('an approved order held for a pregnancy found later: the page shows the hold, and Override with a reason releases it', async () => {
    const { enrolled, session, waiting, page } = await firstSessionApprovedOnPage({
      given: 'Olive',
      family: 'Heldback',
      birthDate: '1988-03-03',
    });
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      subject: enrolled.patient,
      intent: 'order',
    });
    expect(order.status).toBe('active');

    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], enrolled.patient));
    await service.app.get(ContraindicationSweep).sweep();
    await page.click('#filters button[type="submit"]');
    const row = page.locator(`tr[data-task-id="${waiting.id}"]`);
    await row.locator('td.contraindications li.ci-unresolved').waitFor();
    expect(await row.locator('td.contraindications').textContent()).toMatch(
      /Pregnancy.*: unresolvedHolds 1 approved orderOverride/,
    );
    // A Task of the plan still awaiting approval cannot be approved until the contraindication is overridden.
    expect(await row.locator('button').allTextContents()).toEqual(['Olive Heldback', 'Override', 'Reject']);
    expect(await row.locator('td.task').textContent()).toMatch(
      /Cannot be approved until its contraindication is overridden/,
    );
    // The approved session is back on the worklist, held: it needs a clinician again, and cannot be approved.
    const heldRow = page.locator(`tr[data-task-id="${session.id}"]`);
    expect(await heldRow.locator('td.task').textContent()).toMatch(/Approved, now on hold: found after approval/);
    expect(await heldRow.locator('button').allTextContents()).toEqual(['Olive Heldback', 'Override', 'Reject']);
    expect(await heldRow.locator('input.select').isDisabled()).toBe(true);
    await screenshot(page, 'worklist-order-held');

    // The patient view lists the order on hold, why, and offers the override.
    await row.locator('.patient-link').click();
    await page.waitForSelector('#patient-view:not([hidden])');
    const held = page.locator('#timeline li[data-type="order"]');
    expect(await held.textContent()).toMatch(
      /Order: Ketamine at 0\.5 mg\/kg\/h \(35 mg\/h\).*\[on-hold\]: Held: found after approval: Pregnancy/,
    );
    expect(
      await page.locator('#timeline li[data-type="follow-up"]:has-text("First infusion session")').textContent(),
    ).toMatch(/\[approved, on hold\]/);
    await screenshot(page, 'patient-view-order-held');
    await page.click('#timeline li[data-type="contraindication"] button:has-text("Override")');
    await page.waitForSelector('#override-dialog[open]');
    expect(await page.textContent('#override-holds')).toBe('It holds 1 approved order: overriding releases them.');
    // No reason: refused on the page, nothing sent.
    await page.click('#override-confirm');
    expect(await page.textContent('#override-error')).toMatch(/clinical reason is required/);
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('on-hold');
    await page.fill('#override-reason', 'Pregnancy test negative today; condition recorded in error');
    await page.click('#override-confirm');
    await page.waitForSelector('#message.ok:has-text("Overridden")');
    expect(await page.textContent('#message')).toMatch(/^Overridden: .*Pregnancy.*held orders are active again/);
    await page.waitForSelector('#timeline li[data-type="order"]:has-text("[active]")');
    expect((await service.fhir.read<MedicationRequest>('MedicationRequest', order.id!)).status).toBe('active');
    // Who overrode it, by name, and why.
    expect(await page.locator('#timeline li[data-type="contraindication"]').textContent()).toMatch(
      /\[overridden\], by Dr Ada Lovelace: Clinician override: Pregnancy test negative today/,
    );
    await screenshot(page, 'patient-view-order-released');
    await page.click('#back');
    await page.waitForSelector(`tr[data-task-id="${session.id}"]`, { state: 'detached' });
    // The overridden contraindication no longer says it holds anything.
    expect(await row.locator('td.contraindications').textContent()).not.toMatch(/Holds/);
    await page.close();
  }, 60_000);

  it('an infusion charted without its care plan: the rows say so and hold, and Link to the plan follows it up', async () => {
    const { enrolled, session, waiting, page } = await firstSessionApprovedOnPage({
      given: 'Nell',
      family: 'Unlinked',
      birthDate: '1979-05-05',
    });
    // The EHR charts the session given, naming no plan, and no pump record: the service cannot tell it is ketamine.
    const infusionId = await chartedNamingNoPlan(service, enrolled.patient, session);
    expect(await service.app.get(FollowUpService).handle(infusionId)).toMatchObject({ status: 'ignored' });
    await service.app.get(ContraindicationSweep).recheckFor(`CarePlan/${enrolled.carePlanId}`);

    await page.click('#filters button[type="submit"]');
    const row = page.locator(`tr[data-task-id="${waiting.id}"]`);
    await row.locator('td.contraindications li.ci-unresolved').waitFor();
    expect(await row.locator('td.contraindications').textContent()).toMatch(
      /Infusion charted naming no care plan: unresolvedHolds 1 approved order/,
    );
    expect(await row.locator('button').allTextContents()).toEqual([
      'Nell Unlinked',
      'Link to Low-dose ketamine infusion series plan',
      'Not a session of this plan',
      'Reject',
    ]);
    expect(await row.locator('td.task').textContent()).toMatch(
      /Cannot be approved until the infusion charted without its care plan is linked, or recorded as not a session/,
    );
    await screenshot(page, 'worklist-infusion-not-linked');
    // The patient view offers the same, for the plan the issue names.
    await row.locator('.patient-link').click();
    await page.waitForSelector('#patient-view:not([hidden])');
    const inView = page.locator('#timeline li[data-type="contraindication"]');
    expect(await inView.textContent()).toMatch(
      /^.*Infusion charted without its plan: Infusion charted naming no care plan/,
    );
    expect(await inView.locator('button').allTextContents()).toEqual([
      'Link to Low-dose ketamine infusion series plan',
      'Not a session of this plan',
    ]);
    await page.click('#back');
    await row.waitFor();

    await row.locator('button:has-text("Link to")').click();
    await page.waitForSelector('#link-dialog[open]');
    expect(await page.textContent('#link-what')).toMatch(
      /^Infusion charted \d{4}-\d{2}-\d{2} \d{2}:\d{2} \.\. .* \(UTC\), naming no care plan, for Nell Unlinked\.$/,
    );
    await screenshot(page, 'link-infusion-dialog');
    await page.click('#link-confirm');
    await page.waitForSelector('#message.ok:has-text("linked")');
    expect(await page.textContent('#message')).toBe(
      'For Nell Unlinked: the infusion is linked to its plan and followed up; its held orders are active again',
    );
    expect((await service.fhir.read<Procedure>('Procedure', infusionId)).basedOn).toEqual([
      { reference: `CarePlan/${enrolled.carePlanId}` },
    ]);
    // Followed up by the worker: the session it gave done, its check planned.
    await waitFor(
      async () => (await service.fhir.read<Task>('Task', session.id!)).status === 'completed',
      'the session answered by the linked infusion',
    );
    expect((await followUpTasks(service, infusionId)).map(actionOf)).toContain('post-infusion-check');
    await page.close();
  }, 60_000);

  it('the worklist warns before approval when the fasting reminder would reach the patient late', async () => {
    const p = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Tess',
      family: 'Latewindow',
      birthDate: '1991-07-07',
    });
    // The next session's window (2-4 days after the infusion) opens in 2.5 hours.
    const procedure = await completeInfusion(
      service,
      p,
      new Date(Date.now() - 2 * 86_400_000 + 2.5 * 3600_000).toISOString(),
    );
    await service.app.get(FollowUpService).handle(procedure);
    const next = (await followUpTasks(service, procedure)).find((t) => t.description === 'Next induction session')!;
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Latewindow');
    await page.waitForSelector(`tr[data-task-id="${next.id}"]`);
    const row = page.locator(`tr[data-task-id="${next.id}"]`);
    expect(await row.locator('.reminder-notice').textContent()).toMatch(
      /^Approving now sends “Reminder: nothing to eat or drink for 6 hours before” 2 h \d+ min before the window opens; it needs 6 hours of notice\.$/,
    );
    // Still approvable: the clinician decides, knowing.
    expect(await row.locator('button:has-text("Approve")').count()).toBe(1);
    await screenshot(page, 'worklist-reminder-notice');
    // Rescheduling: the dialog says the same for the dates shown, and nothing once the dates give the notice.
    await row.locator('button:has-text("Reschedule")').click();
    await page.waitForSelector('#reschedule-dialog[open]');
    await page.waitForSelector('#reschedule-notice:not([hidden])');
    expect(await page.textContent('#reschedule-notice')).toMatch(
      /^Rescheduling to these dates sends “Reminder: nothing to eat or drink for 6 hours before” 2 h \d+ min before the window opens; it needs 6 hours of notice\.$/,
    );
    await screenshot(page, 'reschedule-notice');
    const later = new Date(Date.parse(next.restriction!.period!.start!) + 2 * 86_400_000).toISOString().slice(0, 10);
    await page.fill('#rs-start', later);
    await page.dispatchEvent('#rs-start', 'change');
    await page.waitForSelector('#reschedule-notice', { state: 'hidden' });
    await page.click('#reschedule-cancel');
    await page.close();
  }, 60_000);

  it('the patient view flags a fasting reminder that went out with less notice than it needs', async () => {
    // Enrolled yesterday, first session booked 2.5 hours from now: its fasting reminder (18 h ahead) is already due.
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const p = await enrolNamedPatient(
      service,
      'ketamine-low-dose-series',
      { given: 'Iris', family: 'Shortnotice', birthDate: '1979-05-02' },
      yesterday,
    );
    const tasks = await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${p.carePlanId}` });
    const session = tasks.find((t) => t.description === 'First infusion session')!;
    const approved = await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: session.meta!.versionId })
      .expect(200);
    const start = new Date(Math.ceil((Date.now() + 2.5 * 3600_000) / 60_000) * 60_000);
    await request(service.url)
      .post(`/tasks/${session.id}/$reschedule`)
      .set(service.as('clinician'))
      .send({
        versionId: approved.body.meta.versionId,
        start: start.toISOString(),
        end: new Date(start.getTime() + 3 * 3600_000).toISOString(),
      })
      .expect(200);
    const fasting = (
      await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', { subject: p.patient })
    ).find((r) => r.category?.[0]?.coding?.[0]?.code === 'reminder-fasting')!;
    expect((await service.app.get(ReminderDelivery).deliver(fasting.id!, fasting.occurrenceDateTime!)).status).toBe(
      'sent',
    );

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Shortnotice');
    await page.locator('#worklist tbody .patient-link').first().click();
    await page.waitForSelector('#patient-view:not([hidden])');
    const flagged = page.locator('#timeline li[data-type="reminder"].ci-unresolved');
    expect(await flagged.count()).toBe(1);
    expect(await flagged.textContent()).toMatch(
      /Reminder: nothing to eat or drink for 6 hours before \[sent\]: Sent 2 h \d+ min before the window of “First infusion session” opened .*this instruction needs 6 hours of notice: confirm with the patient before the infusion\./,
    );
    await screenshot(page, 'patient-view-short-notice');
    await page.close();
  }, 60_000);

  it('reschedules with the date picker inside the protocol window, and refuses dates outside it', async () => {
    const {
      tasks: [, next],
    } = await followUps('2027-03-04T10:00:00.000Z');
    const allowed = next.extension!.find((e) => e.valuePeriod)!.valuePeriod!;
    const day = (iso: string, plus = 0) => new Date(Date.parse(iso) + plus * 86_400_000).toISOString().slice(0, 10);
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await page.click(`tr[data-task-id="${next.id}"] button:has-text("Reschedule")`);
    await page.waitForSelector('#reschedule-dialog[open]');
    // The picker shows the allowed range: the Task's protocol-window extension.
    expect(await page.getAttribute('#rs-start', 'min')).toBe(day(allowed.start!));
    expect(await page.getAttribute('#rs-end', 'max')).toBe(day(allowed.end!));
    expect(await page.textContent('#reschedule-range')).toBe(
      `Allowed by the protocol: ${day(allowed.start!)} to ${day(allowed.end!)} (UTC)`,
    );
    // Outside: refused on the page, nothing sent.
    await page.fill('#rs-start', day(allowed.start!, -3));
    await page.click('#reschedule-confirm');
    expect(await page.textContent('#reschedule-error')).toMatch(/^Choose dates within the allowed range/);
    expect(await page.getAttribute('#rs-start', 'aria-invalid')).toBe('true');
    await screenshot(page, 'reschedule-refused');
    expect((await service.fhir.read<Task>('Task', next.id!)).meta!.versionId).toBe(next.meta!.versionId);
    // Inside: the last day of the window.
    await page.fill('#rs-start', day(allowed.end!));
    await page.fill('#rs-end', day(allowed.end!));
    await page.click('#reschedule-confirm');
    await page.waitForSelector(`tr[data-task-id="${next.id}"]`, { state: 'detached' });
    expect(await page.textContent('#message')).toMatch(/^Rescheduled/);
    const task = await service.fhir.read<Task>('Task', next.id!);
    expect(task.status).toBe('ready');
    expect(task.businessStatus?.coding?.[0].code).toBe('rescheduled');
    expect(task.restriction?.period).toEqual({ start: `${day(allowed.end!)}T00:00:00.000Z`, end: allowed.end });
    await page.close();
  }, 60_000);

  it('the server refuses a window outside the protocol window even if a page sent one', async () => {
    const {
      tasks: [, next],
    } = await followUps('2027-03-14T10:00:00.000Z');
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await page.waitForSelector(`tr[data-task-id="${next.id}"]`);
    const status = await page.evaluate(
      async (task) => {
        const session = JSON.parse(sessionStorage.getItem('kc-session')!) as { accessToken: string };
        const response = await fetch(`/tasks/${task.id}/$reschedule`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${session.accessToken}` },
          body: JSON.stringify({
            versionId: task.versionId,
            start: '2030-01-01T00:00:00Z',
            end: '2030-01-02T00:00:00Z',
          }),
        });
        return response.status;
      },
      { id: next.id!, versionId: next.meta!.versionId! },
    );
    expect(status).toBe(422);
    await page.close();
  }, 60_000);

  it('a session moved outside its protocol window in the EHR: Approve asks why it is approved there, then its dose', async () => {
    const { tasks } = await followUps('2027-03-24T10:00:00.000Z');
    const next = tasks.find((t) => t.focus?.reference?.startsWith('MedicationRequest/'))!;
    // The EHR moves it three weeks on, past what its protocol allows; the service follows the move (its notification).
    const allowed = protocolWindowOf(next)!;
    const at = (iso: string) => new Date(Date.parse(iso) + 21 * 86_400_000).toISOString();
    const window = { start: at(allowed.start!), end: at(allowed.end!) };
    const moved = await service.fhir.update<Task>({ ...next, restriction: { period: window } });
    await postWebhook(service, JSON.stringify(moved)).expect(202);
    await maintenanceJobDone(service, taskChangedInEhrJobId(next.id!, moved.meta!.versionId), 'the move followed');

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showDueFrom(page, window.start);
    const row = `tr[data-task-id="${next.id}"]`;
    await page.waitForSelector(row);
    expect(await page.textContent(`${row} .window-notice`)).toMatch(/^Due outside its protocol window/);
    // Not for the bulk approval, which would refuse it.
    expect(await page.isDisabled(`${row} input.select`)).toBe(true);
    await page.click(`${row} button:has-text("Approve")`);
    await page.waitForSelector('#outside-dialog[open]');
    expect(await page.textContent('#outside-notice')).toMatch(
      /^Due outside its protocol window .*reschedule it instead/,
    );
    // No reason: asked for one, nothing sent.
    await page.click('#outside-confirm');
    expect(await page.textContent('#outside-error')).toBe(
      'A reason is required to approve a task outside its protocol window.',
    );
    expect((await service.fhir.read<Task>('Task', next.id!)).status).toBe('draft');
    const reason = 'Surgery in between; the prescriber agreed to wait';
    await page.fill('#outside-reason', reason);
    await screenshot(page, 'approve-outside-window');
    await page.click('#outside-confirm');
    // Then its dose, as any infusion.
    await page.waitForSelector('#approve-dialog[open]');
    await page.click('#approve-confirm');
    await page.waitForSelector(row, { state: 'detached' });
    expect(await page.textContent('#message')).toMatch(/^Approved/);
    const approved = await service.fhir.read<Task>('Task', next.id!);
    expect([approved.status, approved.restriction?.period]).toEqual(['ready', window]);
    const provenances = await service.fhir.searchAll<Provenance>('Provenance', { target: `Task/${next.id}` });
    expect(provenances.find((p) => p.activity?.text === 'approve')?.reason?.[0].text).toMatch(
      new RegExp(`: ${reason}$`),
    );
    await page.close();
  }, 60_000);

  it('approves an infusion at a rate per kg the clinician chooses within the protocol range, seeing the dose it gives', async () => {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Tess',
      family: 'Titrate',
      birthDate: '1979-09-09',
    });
    const { session } = await awaitingApproval(enrolled.patient);
    const page = await browser.newPage();
    await signInOnPage(page, service);
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.waitFor();
    expect(await row.locator('.dose').textContent()).toBe(
      'Dose 0.5 mg/kg/h, about 35 mg/h for 70 kg (weighed 2026-11-01)',
    );
    // The weighing date on one line, however narrow the column (one box: not broken at its hyphens).
    expect(await row.locator('.dose .nowrap').evaluate((e) => e.getClientRects().length)).toBe(1);

    await row.locator('button:has-text("Approve")').click();
    await page.waitForSelector('#approve-dialog[open]');
    expect(await page.textContent('#approve-rate-label')).toBe('Rate per kg (mg/kg/h; the protocol allows 0.5 to 2)');
    expect(await page.inputValue('#approve-rate')).toBe('0.5');
    // Outside the range: said on the page, nothing sent.
    await page.fill('#approve-rate', '3');
    await page.click('#approve-confirm');
    expect(await page.textContent('#approve-error')).toBe('Choose a rate from 0.5 to 2 mg/kg/h.');
    expect(await page.getAttribute('#approve-rate', 'aria-invalid')).toBe('true');
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('draft');

    await page.fill('#approve-rate', '0.75');
    expect(await page.textContent('#approve-error')).toBe('');
    expect(await page.textContent('#approve-dose')).toBe(
      'Dose 0.75 mg/kg/h, about 52.5 mg/h for 70 kg (weighed 2026-11-01)',
    );
    await screenshot(page, 'approve-infusion-rate-dialog');
    await page.click('#approve-confirm');
    await row.waitFor({ state: 'detached' });
    expect(await page.textContent('#message')).toMatch(/^Approved/);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    expect(order.dosageInstruction?.[0].text).toMatch(
      /^Ketamine IV infusion at 0\.75 mg\/kg\/h \(52\.5 mg\/h for 70 kg\)/,
    );
    // On the to-do list, the infusion to give says what was ordered.
    await showToDoInfusions(page);
    const toDo = page.locator(`tr[data-task-id="${session.id}"]`);
    await toDo.waitFor();
    expect(await toDo.locator('.dose').textContent()).toBe('Ordered at 0.75 mg/kg/h (52.5 mg/h)');
    await page.close();
  }, 60_000);

  it('a weight older than the protocol wants: the row and the approve dialog say to weigh the patient, and so does the order', async () => {
    const old = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Wanda',
      family: 'Weighedlong',
      birthDate: '1978-02-02',
    });
    const recent = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Rita',
      family: 'Weighedlong',
      birthDate: '1978-03-03',
    });
    // Weighed again yesterday: within the protocol's 30 days.
    await service.fhir.create(bodyWeight(72, new Date(Date.now() - 86_400_000).toISOString(), recent.patient));
    const { session } = await awaitingApproval(old.patient);
    const { session: recentSession } = await awaitingApproval(recent.patient);
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Weighedlong');
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.waitFor();
    const advice =
      'Weighed 2026-11-01, more than 30 days ago: weigh the patient before the session (the rate in mg/h is computed from the latest weight)';
    expect(await row.locator('.weight-notice').textContent()).toBe(advice);
    expect(await page.locator(`tr[data-task-id="${recentSession.id}"] .weight-notice`).count()).toBe(0);
    await screenshot(page, 'worklist-weight-notice');

    await row.locator('button:has-text("Approve")').click();
    await page.waitForSelector('#approve-dialog[open]');
    expect(await page.textContent('#approve-weight-notice')).toBe(advice);
    await page.click('#approve-confirm');
    await row.waitFor({ state: 'detached' });
    // The order still gives the rate at the latest weight, and tells whoever gives it to weigh the patient first.
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    expect(order.dosageInstruction?.[0].text).toMatch(/\(35 mg\/h for 70 kg\)/);
    expect(order.note?.map((n) => n.text)).toContain(advice);
    await page.close();
  }, 60_000);

  it('approves an infusion with a bolus at its start, up to the protocol ceiling, seeing the dose it gives', async () => {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Bo',
      family: 'Bolus',
      birthDate: '1975-05-05',
    });
    const { session } = await awaitingApproval(enrolled.patient);
    const page = await browser.newPage();
    await signInOnPage(page, service);
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.locator('button:has-text("Approve")').click();
    await page.waitForSelector('#approve-dialog[open]');
    // Offered, empty: none is proposed.
    expect(await page.isVisible('#approve-bolus')).toBe(true);
    expect(await page.textContent('#approve-bolus-label')).toBe(
      'Bolus at the start, per kg (optional; mg/kg, the protocol allows up to 0.35)',
    );
    expect(await page.inputValue('#approve-bolus')).toBe('');
    // Above the ceiling: said on the page, nothing sent.
    await page.fill('#approve-bolus', '0.5');
    await page.click('#approve-confirm');
    expect(await page.textContent('#approve-error')).toBe('Choose a bolus up to 0.35 mg/kg, or leave it empty.');
    expect(await page.getAttribute('#approve-bolus', 'aria-invalid')).toBe('true');
    expect((await service.fhir.read<Task>('Task', session.id!)).status).toBe('draft');

    await page.fill('#approve-bolus', '0.25');
    expect(await page.textContent('#approve-error')).toBe('');
    expect(await page.textContent('#approve-bolus-dose')).toBe(
      'Bolus 0.25 mg/kg, about 17.5 mg for 70 kg, at the start of the infusion',
    );
    await screenshot(page, 'approve-infusion-bolus-dialog');
    await page.click('#approve-confirm');
    await row.waitFor({ state: 'detached' });
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    expect(order.dosageInstruction?.map((d) => d.text)).toEqual([
      expect.stringMatching(/^Ketamine IV infusion at 0\.5 mg\/kg\/h \(35 mg\/h for 70 kg\)/),
      'Ketamine IV bolus 0.25 mg/kg (17.5 mg for 70 kg) at the start of the infusion',
    ]);
    // The to-do list says both.
    await showToDoInfusions(page);
    const toDo = page.locator(`tr[data-task-id="${session.id}"]`);
    await toDo.waitFor();
    expect(await toDo.locator('.dose').textContent()).toBe(
      'Ordered at 0.5 mg/kg/h (35 mg/h), bolus 0.25 mg/kg (17.5 mg)',
    );
    await page.close();
  }, 60_000);

  it('changes the dose of an approved infusion from the to-do list: the order replaced at the rate and bolus chosen', async () => {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Dee',
      family: 'Change',
      birthDate: '1971-07-07',
    });
    const { session } = await awaitingApproval(enrolled.patient);
    await approvedThroughApi(session, { bolus: { value: 0.2, unit: 'mg/kg' } });
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showToDoInfusions(page);
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.waitFor();
    await row.locator('button:has-text("Change dose")').click();
    await page.waitForSelector('#change-dialog[open]');
    // It starts from what the order gives now.
    expect(await page.textContent('#change-current')).toBe(
      'Ordered now at 0.5 mg/kg/h (35 mg/h), bolus 0.2 mg/kg (14 mg)',
    );
    expect(await page.inputValue('#change-rate')).toBe('0.5');
    expect(await page.inputValue('#change-bolus')).toBe('0.2');
    // Outside the protocol's range: said on the page, nothing sent.
    await page.fill('#change-rate', '2.5');
    await page.click('#change-confirm');
    expect(await page.textContent('#change-error')).toBe('Choose a rate from 0.5 to 2 mg/kg/h.');
    const ordersNow = () =>
      service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
        identifier: orderKeySearch(session.id!),
        _sort: '_lastUpdated',
      });
    expect(await ordersNow()).toHaveLength(1);

    await page.fill('#change-rate', '0.75');
    expect(await page.textContent('#change-dose')).toBe(
      'Dose 0.75 mg/kg/h, about 52.5 mg/h for 70 kg (weighed 2026-11-01)',
    );
    await page.fill('#change-bolus', '');
    await page.fill('#change-reason', 'Dizzy after the last session');
    await screenshot(page, 'change-dose-dialog');
    await page.click('#change-confirm');
    await page.locator(`tr[data-task-id="${session.id}"] .dose`, { hasText: '0.75' }).waitFor();
    expect(await row.locator('.dose').textContent()).toBe('Ordered at 0.75 mg/kg/h (52.5 mg/h)');
    expect(await page.textContent('#message')).toMatch(/^Dose changed: /);
    const orders = await ordersNow();
    const replaced = orders.find((o) => o.status === 'cancelled')!;
    const replacement = orders.find((o) => o.status !== 'cancelled')!;
    expect(replacement).toMatchObject({
      status: 'active',
      priorPrescription: { reference: `MedicationRequest/${replaced.id}` },
      note: [
        { text: 'Dose changed before the session: Dizzy after the last session' },
        // The patients here were weighed on 2026-11-01: the nurse reads on the order to weigh them first.
        { text: expect.stringMatching(/^Weighed 2026-11-01, more than 30 days ago: weigh the patient/) },
      ],
    });
    expect(replacement.dosageInstruction).toHaveLength(1);
    await page.close();
  }, 60_000);

  it('an approved session whose appointment was cancelled in the scheduling system says so on the to-do list', async () => {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Cass',
      family: 'Cancelled',
      birthDate: '1980-08-08',
    });
    const { session } = await awaitingApproval(enrolled.patient);
    const approved = await approvedThroughApi(session);
    // The approval's own look for an appointment done first: it would book the one written below at the same moment
    // as the bookings called here, one of them then refused (412).
    await maintenanceJobDone(
      service,
      sessionApprovedJobId(session.id!),
      'the approved session to look for its appointment',
    );
    const start = Date.parse(approved.restriction!.period!.start!) + 14 * 3_600_000;
    const { resource: appointment } = await service.fhir.create<Appointment>({
      resourceType: 'Appointment',
      status: 'booked',
      start: new Date(start).toISOString(),
      end: new Date(start + 3_600_000).toISOString(),
      participant: [{ actor: { reference: enrolled.patient }, status: 'accepted' }],
    });
    const bookings = service.app.get(AppointmentBookings);
    expect(await bookings.handle(appointment.id!)).toMatchObject({ result: 'booked' });
    await service.fhir.update<Appointment>({ ...appointment, status: 'cancelled' });
    expect(await bookings.handle(appointment.id!)).toMatchObject({ result: 'cancelled' });

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showToDoInfusions(page);
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.locator('.attention').waitFor();
    expect(await row.locator('.attention').textContent()).toBe(
      `Its appointment was cancelled in the scheduling system (Appointment/${appointment.id}): book it again`,
    );
    await screenshot(page, 'to-do-appointment-cancelled');
    await page.close();
  }, 60_000);

  it('a next session proposed at the rate the pump gave last session says so on its row and in the approve dialog', async () => {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Pam',
      family: 'Pump',
      birthDate: '1970-07-07',
    });
    const { session } = await awaitingApproval(enrolled.patient);
    await approvedThroughApi(session, { rate: { value: 1, unit: 'mg/kg/h' } });
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    // Lowered at the pump to 52.5 mg/h (0.75 mg/kg/h at 70 kg) during the session.
    await service.fhir.create<MedicationAdministration>({
      resourceType: 'MedicationAdministration',
      status: 'completed',
      medicationCodeableConcept: order.medicationCodeableConcept,
      subject: { reference: enrolled.patient },
      request: { reference: `MedicationRequest/${order.id}` },
      effectivePeriod: { start: '2027-01-04T09:15:00.000Z', end: '2027-01-04T09:40:00.000Z' },
      dosage: { rateQuantity: { value: 52.5, unit: 'mg/h', system: 'http://unitsofmeasure.org', code: 'mg/h' } },
    });
    const procedureId = await completeInfusion(
      service,
      { patient: enrolled.patient, carePlanId: enrolled.carePlanId },
      '2027-01-04T10:00:00.000Z',
    );
    await service.app.get(FollowUpService).handle(procedureId);
    const next = (await followUpTasks(service, procedureId)).find((t) => actionOf(t) === 'next-induction-session')!;

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Pump');
    const row = page.locator(`tr[data-task-id="${next.id}"]`);
    await row.waitFor();
    expect(await row.locator('.dose').textContent()).toBe(
      'Dose 0.75 mg/kg/h, about 52.5 mg/h for 70 kg (weighed 2026-11-01)',
    );
    expect(await row.locator('.last-given').textContent()).toBe(
      'Last session given at 52.5 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h',
    );
    await row.locator('button:has-text("Approve")').click();
    await page.waitForSelector('#approve-dialog[open]');
    expect(await page.inputValue('#approve-rate')).toBe('0.75');
    expect(await page.textContent('#approve-last-given')).toBe(
      'Last session given at 52.5 mg/h (0.75 mg/kg/h); ordered at 1 mg/kg/h',
    );
    await page.close();
  }, 60_000);

  it('reschedules an infusion with its rate per kg and a bolus: the dialog asks them with the dates', async () => {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Rhea',
      family: 'Rebook',
      birthDate: '1981-01-01',
    });
    const { session } = await awaitingApproval(enrolled.patient);
    const page = await browser.newPage();
    await signInOnPage(page, service);
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.locator('button:has-text("Reschedule")').click();
    await page.waitForSelector('#reschedule-dialog[open]');
    expect(await page.isVisible('#rs-rate')).toBe(true);
    expect(await page.textContent('#rs-rate-label')).toBe('Rate per kg (mg/kg/h; the protocol allows 0.5 to 2)');
    await page.fill('#rs-rate', '2.5');
    await page.click('#reschedule-confirm');
    expect(await page.textContent('#reschedule-error')).toBe('Choose a rate from 0.5 to 2 mg/kg/h.');
    await page.fill('#rs-rate', '1');
    expect(await page.textContent('#rs-dose')).toBe('Dose 1 mg/kg/h, about 70 mg/h for 70 kg (weighed 2026-11-01)');
    // The bolus too, refused on the page above the protocol's ceiling.
    expect(await page.inputValue('#rs-bolus')).toBe('');
    await page.fill('#rs-bolus', '0.4');
    await page.click('#reschedule-confirm');
    expect(await page.textContent('#reschedule-error')).toBe('Choose a bolus up to 0.35 mg/kg, or leave it empty.');
    await page.fill('#rs-bolus', '0.1');
    expect(await page.textContent('#rs-bolus-dose')).toBe(
      'Bolus 0.1 mg/kg, about 7 mg for 70 kg, at the start of the infusion',
    );
    await screenshot(page, 'reschedule-infusion-dialog');
    await page.click('#reschedule-confirm');
    await row.waitFor({ state: 'detached' });
    expect(await page.textContent('#message')).toMatch(/^Rescheduled/);
    const [order] = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      identifier: orderKeySearch(session.id!),
    });
    expect(order.dosageInstruction?.[0].text).toMatch(/^Ketamine IV infusion at 1 mg\/kg\/h \(70 mg\/h for 70 kg\)/);
    expect(order.dosageInstruction?.[1].text).toBe(
      'Ketamine IV bolus 0.1 mg/kg (7 mg for 70 kg) at the start of the infusion',
    );
    await page.close();
  }, 60_000);

  it('a bulk approval names what it refused, and asks about each session the EHR has ordered already', async () => {
    const ordered = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Bruno',
      family: 'Bulkordered',
      birthDate: '1981-03-03',
    });
    const plain = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Carla',
      family: 'Bulkordered',
      birthDate: '1982-04-04',
    });
    const { session } = await awaitingApproval(ordered.patient);
    const { session: other } = await awaitingApproval(plain.patient);
    const { ehrOrder } = await orderedInEhrFor(service, session);

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Bulkordered');
    // The filtered list drawn (its rows checked before it replaced the whole list's were lost: CI, under load).
    await page.waitForSelector('#worklist[data-query*="name=Bulkordered"]');
    for (const task of [session, other]) await page.check(`tr[data-task-id="${task.id}"] input.select`);
    await page.click('#bulk-approve');
    await page.locator('#ordered-dialog[open]').waitFor();
    // The refusal names the session and its patient as the row does, not the Task's id.
    expect(await page.textContent('#message')).toMatch(
      /^Approved 1 of 2 tasks; refused: .+ for Bruno Bulkordered \(Already ordered outside this care plan/,
    );
    expect(await page.textContent('#message')).not.toContain(session.id!);
    expect(await page.textContent('#ordered-what')).toMatch(/for Bruno Bulkordered$/);
    await screenshot(page, 'bulk-approve-ordered-in-ehr');
    await page.click('#ordered-choices button:has-text("Approve on the EHR’s order (it is this session’s)")');
    await page.locator(`tr[data-task-id="${session.id}"]`).waitFor({ state: 'detached' });
    expect(await page.isVisible('#ordered-dialog[open]')).toBe(false);
    expect((await service.fhir.read<Task>('Task', other.id!)).status).toBe('ready');
    await expectApprovedOnEhrOrder(session, ehrOrder);
    await page.close();
  }, 60_000);

  it('bulk approves the selected tasks', async () => {
    const { tasks } = await followUps('2027-04-04T10:00:00.000Z');
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showDueFrom(page, '2027-04-04');
    for (const task of tasks) await page.check(`tr[data-task-id="${task.id}"] input.select`);
    expect(await page.textContent('#bulk-approve')).toBe(`Approve selected (${tasks.length})`);
    await page.click('#bulk-approve');
    await page.waitForSelector('#message.ok:has-text("Approved")');
    expect(await page.textContent('#message')).toBe(`Approved ${tasks.length} of ${tasks.length} tasks`);
    for (const task of tasks) {
      expect(await page.locator(`tr[data-task-id="${task.id}"]`).count()).toBe(0);
      expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('ready');
    }
    await page.close();
  }, 60_000);

  it('opens the patient view: CarePlan timeline with infusions, follow-ups and who decided', async () => {
    const {
      tasks: [session, other],
    } = await followUps('2027-05-04T10:00:00.000Z');
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showDueFrom(page, '2027-05-04');
    await approveOnPage(page, session.id!);
    await page.waitForSelector(`tr[data-task-id="${session.id}"]`, { state: 'detached' });
    // Another of the same infusion's follow-ups is still listed: open the patient from it.
    const patient = session.for!.reference!;
    await page.click(`tr[data-task-id="${other.id}"] .patient-link`);
    await page.waitForSelector('#patient-view:not([hidden])');
    expect(await page.isHidden('#worklist-view')).toBe(true);
    expect(await page.evaluate('document.activeElement.id')).toBe('patient-heading');
    expect(await page.locator('#timeline li[data-type="infusion"]').count()).toBe(1);
    expect(await page.locator('#timeline li[data-type="follow-up"]').count()).toBeGreaterThan(1);
    const decision = await page.locator('#timeline li[data-type="decision"]').first().textContent();
    expect(decision).toContain(`Decision: approve ${session.description}, by Dr Ada Lovelace`);
    expect(decision).toContain('by Dr Ada Lovelace');
    // Approving the session scheduled the patient's reminders (fhir-profiles: the last when its window opens).
    const reminders = await page.locator('#timeline li[data-type="reminder"]').allTextContents();
    expect(reminders).toHaveLength(3);
    expect(reminders[2]).toContain(`${session.restriction!.period!.start!.slice(0, 16).replace('T', ' ')} reminder`);
    expect(reminders[2]).toContain('Reminder: no driving for 24 hours [scheduled]');
    // The plan's status in words ("draft, not yet activated"), its code only in the title.
    expect(await page.textContent('#careplans')).toMatch(/low-dose.*: draft, not yet activated$/i);
    // Names and words on the page; the FHIR ids only in titles, for support.
    const shown = await page.textContent('#patient-view');
    expect(shown).not.toMatch(/(Patient|CarePlan|Task|DetectedIssue)\/[\w-]{8,}/);
    expect(await page.getAttribute('#patient-summary', 'title')).toBe(patient);
    await screenshot(page, 'patient-view');
    await page.click('#back');
    expect(await page.isVisible('#worklist-view')).toBe(true);
    await page.close();
  }, 60_000);

  it('records a post-infusion check from the worklist: its questions, a refused answer shown, then done', async () => {
    const { tasks } = await followUps('2027-07-04T10:00:00.000Z');
    const check = tasks.find((t) => actionOf(t) === 'post-infusion-check')!;
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showDueFrom(page, '2027-07-04');
    await page.click(`tr[data-task-id="${check.id}"] button:has-text("Record check")`);
    await page.waitForSelector('#check-dialog[open]');
    // The questions are the Questionnaire's (fhir-profiles): the PEG score is calculated, not asked.
    expect(await page.textContent('#check-title')).toBe('Record Post-infusion check');
    expect(await page.locator('#check-questions input[type=number]').count()).toBe(4);
    expect(await page.locator('#check-questions input[type=checkbox]').count()).toBe(6);
    expect(await page.textContent('#check-questions')).not.toContain('PEG score');
    await page.fill('#q-pain-now', '12');
    await page.fill('#q-peg-average-pain', '5');
    await page.fill('#q-peg-enjoyment-of-life', '6');
    await page.fill('#q-peg-general-activity', '5');
    await page.check('#check-questions input[value="effect-nausea"]');
    await page.fill('#q-note', 'Queasy on the evening of the infusion.');
    await page.click('#check-confirm');
    // The server refuses the out-of-range answer; the dialog stays open with the answers, saying what is wrong.
    await page.locator('#check-error', { hasText: /outside/ }).waitFor();
    expect(await page.textContent('#check-error')).toMatch(/Pain now .*: 12 is outside 0 \.\. 10/);
    expect(await page.isVisible('#check-dialog')).toBe(true);
    await screenshot(page, 'record-check-refused');
    await page.fill('#q-pain-now', '4');
    await page.click('#check-confirm');
    await page.waitForSelector(`tr[data-task-id="${check.id}"]`, { state: 'detached' });
    expect(await page.textContent('#message')).toMatch(/^Recorded: Post-infusion check/);
    expect((await service.fhir.read<Task>('Task', check.id!)).status).toBe('completed');
    // Whoever approves the patient's next infusion sees what they reported after this one.
    const next = tasks.find((t) => actionOf(t) === 'next-induction-session')!;
    const effects = page.locator(`tr[data-task-id="${next.id}"] .effects`);
    expect(await effects.textContent()).toMatch(/^Effects reported \d{4}-\d{2}-\d{2}: Nausea$/);
    expect(await effects.getAttribute('class')).toContain('notice');
    await screenshot(page, 'worklist-effects-reported');

    // The patient view says what the patient answered, and who recorded it.
    await page.click(`tr[data-task-id="${next.id}"] .patient-link`);
    await page.waitForSelector('#patient-view:not([hidden])');
    const followUp = await page
      .locator('#timeline li[data-type="follow-up"]', { hasText: 'Post-infusion check' })
      .textContent();
    expect(followUp).toContain('[done]');
    expect(followUp).toContain(
      'Pain now: 4; PEG score: 5.3; Effects since the infusion: Nausea; Notes for the care team: Queasy on the evening of the infusion.',
    );
    expect(await page.locator('#timeline li[data-type="decision"]', { hasText: 'Recorded:' }).textContent()).toContain(
      'by Dr Ada Lovelace',
    );
    expect(await page.textContent('#patient-scores')).toContain('4');
    await screenshot(page, 'patient-view-check-recorded');
    await page.close();
  }, 60_000);

  it('an effect reported for review: the next infusion waits, and Review with what was decided lets it go on', async () => {
    const { tasks } = await followUps('2027-07-11T10:00:00.000Z');
    const check = tasks.find((t) => actionOf(t) === 'post-infusion-check')!;
    const next = tasks.find((t) => actionOf(t) === 'next-induction-session')!;
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showDueFrom(page, '2027-07-11');
    await page.click(`tr[data-task-id="${check.id}"] button:has-text("Record check")`);
    await page.waitForSelector('#check-dialog[open]');
    for (const [id, value] of [
      ['pain-now', '3'],
      ['peg-average-pain', '4'],
      ['peg-enjoyment-of-life', '4'],
      ['peg-general-activity', '4'],
    ])
      await page.fill(`#q-${id}`, value);
    await page.check('#check-questions input[value="effect-hallucinations"]');
    await page.click('#check-confirm');
    await page.waitForSelector(`tr[data-task-id="${check.id}"]`, { state: 'detached' });
    await page.click('#filters button[type="submit"]');
    const row = page.locator(`tr[data-task-id="${next.id}"]`);
    await row.locator('td.contraindications li.ci-unresolved').waitFor();
    expect(await row.locator('td.contraindications').textContent()).toMatch(
      /^Hallucinations reported after an infusion: unresolvedReview$/,
    );
    expect(await row.locator('button').allTextContents()).toEqual([expect.any(String), 'Review', 'Reject']);
    expect(await row.locator('td.task').textContent()).toMatch(
      /Cannot be approved until a clinician reviews the effect reported$/,
    );
    await screenshot(page, 'worklist-effect-to-review');
    await row.locator('td.contraindications button:has-text("Review")').click();
    await page.waitForSelector('#override-dialog[open]');
    expect(await page.textContent('#override-title')).toBe('Review a reported effect');
    // What it rests on, in words: the answers it was reported in, not their id.
    expect(await page.textContent('#override-what')).toMatch(
      /^Hallucinations reported after an infusion for .* \(Answers to the Post-infusion check of \d{4}-\d{2}-\d{2}\)$/,
    );
    await page.click('#override-confirm');
    expect(await page.textContent('#override-error')).toMatch(/Say what was decided/);
    await screenshot(page, 'review-effect-dialog');
    await page.fill('#override-reason', 'Called the patient: brief, gone by the evening. Go on at the same rate.');
    await page.click('#override-confirm');
    await page.waitForSelector('#message.ok:has-text("Reviewed")');
    expect(await page.textContent('#message')).toMatch(/^Reviewed: Hallucinations reported after an infusion/);
    await row.locator('button:has-text("Approve")').waitFor();
    expect(await row.locator('td.contraindications').textContent()).toMatch(/: overridden$/);
    await page.close();
  }, 60_000);

  it('a check done in the EHR whose answers could not be read: the next infusion waits for a clinician to read them', async () => {
    const { tasks } = await followUps('2027-07-18T10:00:00.000Z');
    const check = tasks.find((t) => actionOf(t) === 'post-infusion-check')!;
    const next = tasks.find((t) => actionOf(t) === 'next-induction-session')!;
    // The EHR completes the check with no answers linked; the worker takes it as done.
    await service.fhir.update<Task>({ ...check, status: 'completed' });
    expect(await service.app.get(ChecksDoneElsewhere).handle(check.id!)).toMatchObject({ result: 'recorded' });
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showDueFrom(page, '2027-07-18');
    const row = page.locator(`tr[data-task-id="${next.id}"]`);
    await row.locator('td.contraindications li.ci-unresolved').waitFor();
    expect(await row.locator('td.task').textContent()).toMatch(
      /Cannot be approved until a clinician reads the check's answers$/,
    );
    await row.locator('td.contraindications button:has-text("Review")').click();
    await page.waitForSelector('#override-dialog[open]');
    expect(await page.textContent('#override-title')).toBe('Review the answers read in the EHR');
    expect(await page.textContent('#override-what')).toMatch(
      /^Answers to the Post-infusion check not read for .* \(The Post-infusion check of \d{4}-\d{2}-\d{2}\)$/,
    );
    await screenshot(page, 'review-unread-check-answers');
    await page.fill('#override-reason', 'Read in the EHR: pain 3, no effects. Go on.');
    await page.click('#override-confirm');
    await page.waitForSelector('#message.ok:has-text("Reviewed")');
    expect(await page.textContent('#message')).toMatch(/^Reviewed: Answers to the Post-infusion check not read/);
    await row.locator('button:has-text("Approve")').waitFor();
    await page.close();
  }, 60_000);

  it('an infusion recorded in error: Plan again without it withdraws what it planned and proposes again what it closed', async () => {
    const enrolment = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Ines',
      family: 'Wrongchart',
      birthDate: '1980-03-03',
    });
    const { carePlanId } = enrolment;
    const procedureId = await completeInfusion(service, enrolment, '2027-01-02T10:00:00.000Z');
    await service.app.get(FollowUpService).handle(procedureId);
    const planned = await followUpTasks(service, procedureId);
    const next = planned.find((t) => actionOf(t) === 'next-induction-session')!;
    const procedure = await service.fhir.read<Procedure>('Procedure', procedureId);
    await service.fhir.update<Procedure>({ ...procedure, status: 'entered-in-error' });
    expect(await service.app.get(InfusionsInError).heard(procedureId)).toMatchObject({ recorded: 1 });

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await filteredByName(page, 'Wrongchart');
    const row = page.locator(`tr[data-task-id="${next.id}"]`);
    await row.locator('td.contraindications li.ci-unresolved').waitFor();
    expect(await row.locator('td.task').textContent()).toMatch(
      /Cannot be approved until the plan is put right after the infusion recorded in error$/,
    );
    expect(await row.locator('td.contraindications button').allTextContents()).toEqual([
      'Plan again without it',
      'Resolve by hand',
    ]);
    await row.locator('button:has-text("Plan again without it")').click();
    await page.waitForSelector('#replan-dialog[open]');
    expect(await page.textContent('#replan-what')).toMatch(/^Infusion recorded in error for Ines Wrongchart/);
    await screenshot(page, 'replan-infusion-in-error-dialog');
    // A reason is asked for: nothing is sent without one.
    await page.click('#replan-confirm');
    expect(await page.textContent('#replan-error')).toBe('Say why: it is recorded with your name.');
    await page.fill('#replan-reason', 'Charted on the wrong patient');
    await page.click('#replan-confirm');
    await page.waitForSelector('#message.ok:has-text("Planned again without the infusion")');
    expect(await page.textContent('#message')).toBe(
      'For Ines Wrongchart: Planned again without the infusion: 2 Tasks it planned withdrawn; 1 it closed proposed again for approval.',
    );
    // The sessions it planned are gone from the list; the first session, proposed again, can be approved.
    await row.waitFor({ state: 'detached' });
    const again = (
      await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${carePlanId}`, status: 'draft' })
    ).find((t) => t.description === 'First infusion session')!;
    const againRow = page.locator(`tr[data-task-id="${again.id}"]`);
    await againRow.locator('button:has-text("Approve")').waitFor();
    expect(await againRow.locator('td.contraindications').textContent()).toBe('Infusion recorded in error: resolved');
    await screenshot(page, 'replan-infusion-in-error-done');
    await page.close();
  }, 60_000);

  it('records an approved check from the patient view, where it no longer is on the worklist', async () => {
    const { tasks } = await followUps('2027-08-04T10:00:00.000Z');
    const check = await approvedCheck(tasks);
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showDueFrom(page, '2027-08-04');
    await page.click(`tr[data-task-id="${tasks.find((t) => t !== check)!.id}"] .patient-link`);
    await page.waitForSelector('#patient-view:not([hidden])');
    const item = page.locator('#timeline li[data-type="follow-up"]', { hasText: 'Post-infusion check' });
    expect(await item.textContent()).toContain('[approved]');
    await item.locator('button:has-text("Record check")').click();
    await page.waitForSelector('#check-dialog[open]');
    await screenshot(page, 'record-check-dialog');
    await answerCheckDialog(page, ['2', '3', '2', '2'], 'effect-none');
    await page.locator('#message', { hasText: /^Recorded/ }).waitFor();
    // The view reloads: the check is done, with no button left.
    await item.filter({ hasText: '[done]' }).waitFor();
    expect(await item.locator('button').count()).toBe(0);
    expect(await item.textContent()).toContain('Effects since the infusion: No effects');
    expect(await page.locator('#patient-scores .effects').getAttribute('class')).toBe('muted effects');
    expect(await page.textContent('#patient-scores')).toContain(': No effects');
    await page.close();
  }, 60_000);

  it('an approved session begun in the EHR (in progress) stays on the to-do list, which says so', async () => {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Bea',
      family: 'Begun',
      birthDate: '1975-05-05',
    });
    const { session } = await awaitingApproval(enrolled.patient);
    const approved = await approvedThroughApi(session);
    await service.fhir.update<Task>({ ...approved, status: 'in-progress' });
    await service.app.get(ToDoIndex).rebuild();

    const page = await browser.newPage();
    await signInOnPage(page, service);
    await page.click('#list-to-do');
    await filteredByName(page, 'Begun');
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.waitFor();
    expect(await row.locator('.approved').textContent()).toBe('Approved, begun in the EHR');
    await page.close();
  }, 60_000);

  it('lists the approved checks to make on the to-do list, and records one there', async () => {
    const { tasks } = await followUps('2027-09-06T10:00:00.000Z');
    const check = await approvedCheck(tasks);
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showDueFrom(page, '2027-09-06');
    // Approved: not on the worklist any more, but on the to-do list.
    await page.waitForSelector(`tr[data-task-id="${tasks.find((t) => t !== check)!.id}"]`);
    expect(await page.locator(`tr[data-task-id="${check.id}"]`).count()).toBe(0);
    await page.click('#list-to-do');
    await page.selectOption('#f-kind', 'post-infusion-check');
    // The filtered list, not the whole one shown a moment before (which holds this check too).
    await Promise.all([
      page.waitForResponse((r) => r.url().includes('kind=post-infusion-check') && r.ok()),
      page.click('#filters button[type=submit]'),
    ]);
    // Read from the test side: the page's Content Security Policy forbids evaluating a string in it.
    await waitFor(async () => {
      const shown = await page.locator('#worklist tbody td.task').allTextContents();
      return shown.every((text) => text.startsWith('Post-infusion check within one week'));
    }, 'the to-do list filtered to checks');
    const row = page.locator(`tr[data-task-id="${check.id}"]`);
    await row.waitFor();
    expect(await page.textContent('#worklist-heading')).toBe('To do: approved, not yet done');
    expect(await page.getAttribute('#list-to-do', 'aria-pressed')).toBe('true');
    expect(await page.textContent('#message')).toMatch(/^\d+ approved tasks? to do$/);
    expect(await page.isHidden('#bulk-approve')).toBe(true);
    // Every row a check, none to approve: the clinic's calls to make.
    const kinds = await page.locator('#worklist tbody td.task').allTextContents();
    expect(kinds.length).toBeGreaterThan(0);
    // Named once: the protocol's name for it says what kind it is (before, "Post-infusion check: Post-infusion check ...").
    for (const text of kinds) expect(text).toMatch(/^Post-infusion check within one week(?!.*Post-infusion check)/);
    expect(await row.locator('button:has-text("Approve")').count()).toBe(0);
    expect(await row.locator('.approved').textContent()).toBe('Approved');
    expect(await row.locator('button:has-text("Record check")').count()).toBe(1);
    await screenshot(page, 'to-do-checks');

    await row.locator('button:has-text("Record check")').click();
    await page.waitForSelector('#check-dialog[open]');
    await answerCheckDialog(page, ['3', '3', '3', '2'], 'effect-none');
    // Done: off the to-do list, which stays shown.
    await row.waitFor({ state: 'detached' });
    expect(await page.textContent('#message')).toMatch(/^Recorded: Post-infusion check/);
    expect(await page.textContent('#worklist-heading')).toBe('To do: approved, not yet done');
    expect((await service.fhir.read<Task>('Task', check.id!)).status).toBe('completed');

    await page.click('#list-worklist');
    await page.locator('#message', { hasText: /awaiting approval/ }).waitFor();
    expect(await page.textContent('#worklist-heading')).toBe('Awaiting approval');
    expect(await page.isVisible('#bulk-approve')).toBe(true);
    await page.close();
  }, 60_000);

  it('takes an approved check on the to-do list: it says whose it is, and "Mine" lists it', async () => {
    const { tasks } = await followUps('2027-09-20T10:00:00.000Z');
    const check = await approvedCheck(tasks);
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showDueFrom(page, '2027-09-20');
    await page.click('#list-to-do');
    const row = page.locator(`tr[data-task-id="${check.id}"]`);
    await row.waitFor();
    expect(await row.locator('.owner').textContent()).toBe('Nobody has taken it yet');
    expect(await page.textContent('#owners')).toMatch(/^Taken: .*\. Nobody's yet: [1-9]\d*\.$/);
    await row.locator('button:has-text("Take")').click();
    await page.locator('#message', { hasText: /^Taken: / }).waitFor();
    expect(await row.locator('.owner').textContent()).toBe('Yours');
    expect(await page.textContent('#owners')).toMatch(/^Taken: Dr Ada Lovelace 1\. Nobody's yet: \d+\.$/);
    expect(await row.locator('button:has-text("Give back")').count()).toBe(1);
    // An EHR reads who it is in Task.owner: the Practitioner signed in on the page.
    const taken = await service.fhir.read<Task>('Task', check.id!);
    expect(taken.owner?.reference).toMatch(/^Practitioner\//);
    expect(taken.status).toBe('ready');
    await page.selectOption('#f-owner', 'me');
    await page.click('#filters button[type=submit]');
    await page.locator('#message', { hasText: /^1 approved task to do$/ }).waitFor();
    expect(await page.locator('#worklist tbody tr').count()).toBe(1);
    await screenshot(page, 'to-do-mine');
    await page.selectOption('#f-owner', 'none');
    await page.click('#filters button[type=submit]');
    await row.waitFor({ state: 'detached' });
    await page.close();
  }, 60_000);

  it('shows a check done in the EHR in the patient view: what was answered, by whom, recorded in the EHR', async () => {
    const { tasks } = await followUps('2027-10-04T10:00:00.000Z');
    const check = tasks.find((t) => actionOf(t) === 'post-infusion-check')!;
    // The EHR's form filler: its answers, then the Task completed with them (CPG / SDC), behind the service's back.
    const { resource: response } = await service.fhir.create<QuestionnaireResponse>({
      ...checkAnswers(4, ['effect-dizziness']),
      questionnaire: `${check.input![0].valueCanonical}`,
      subject: check.for,
      author: { reference: 'Practitioner/ehr-nurse', display: 'Nurse Grace Okafor' },
    });
    await service.fhir.update<Task>({
      ...check,
      status: 'completed',
      output: [{ type: { text: 'answers' }, valueReference: { reference: `QuestionnaireResponse/${response.id}` } }],
    });
    // What the Task's notification or the poll queues.
    await service.app.get(ChecksDoneElsewhere).handle(check.id!);

    const page = await browser.newPage();
    await signInOnPage(page, service);
    // Its other follow-ups are due months after the other tests' Tasks: past the first page unless filtered.
    await page.fill('#f-due-after', '2027-10-04');
    await page.click('#filters button[type=submit]');
    await page.click(`tr[data-task-id="${tasks.find((t) => t !== check)!.id}"] .patient-link`);
    await page.waitForSelector('#patient-view:not([hidden])');
    const item = page.locator('#timeline li[data-type="follow-up"]', { hasText: 'Post-infusion check' });
    expect(await item.textContent()).toContain('[done]');
    expect(await item.textContent()).toContain('Pain now: 4; Effects since the infusion: Dizziness');
    expect(await item.locator('button').count()).toBe(0);
    const recorded = await page.locator('#timeline li[data-type="decision"]', { hasText: 'Recorded:' }).textContent();
    expect(recorded).toContain('by Nurse Grace Okafor: Recorded in the EHR');
    expect(await page.textContent('#patient-scores .effects')).toMatch(/Dizziness$/);
    await screenshot(page, 'patient-view-check-done-in-ehr');
    await page.close();
  }, 60_000);

  it('runs from its own files with no inline script or style allowed, and nothing on it is refused', async () => {
    const html = await request(service.url).get('/ui').expect(200);
    expect(html.headers['content-security-policy']).toMatch(/script-src 'self'; style-src 'self';/);
    expect(html.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(html.text).not.toMatch(/<script>|<style>/);
    await request(service.url)
      .get('/ui/worklist.js')
      .expect(200)
      .expect('content-type', /javascript/);
    await request(service.url).get('/ui/worklist.css').expect(200).expect('content-type', /css/);

    const page = await browser.newPage();
    // A refusal by the policy (or any script error) is reported on the console.
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(error.message));
    await signInOnPage(page, service);
    expect(await page.evaluate('getComputedStyle(document.body).fontFamily')).toContain('system-ui');
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('approves with the keyboard only', async () => {
    const {
      tasks: [task],
    } = await followUps('2027-06-04T10:00:00.000Z');
    const page = await browser.newPage();
    await signInOnPage(page, service);
    await showDueFrom(page, '2027-06-04');
    await page.waitForSelector(`tr[data-task-id="${task.id}"]`);
    const target = `tr[data-task-id="${task.id}"] button[aria-label^="Approve "]`;
    const focused = `document.activeElement === document.querySelector(${JSON.stringify(target)})`;
    let reached = false;
    for (let i = 0; i < 400 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await page.evaluate(focused)) === true;
    }
    expect(reached).toBe(true);
    await page.keyboard.press('Enter');
    // An infusion asks for its rate per kg: the dialog opens with the focus on it, and Enter confirms.
    if (await page.locator('#approve-dialog[open]').isVisible()) {
      expect(await page.evaluate('document.activeElement && document.activeElement.id')).toBe('approve-rate');
      await page.keyboard.press('Enter');
    }
    await page.waitForSelector(`tr[data-task-id="${task.id}"]`, { state: 'detached' });
    expect(await page.textContent('#message')).toMatch(/^Approved/);
    expect((await service.fhir.read<Task>('Task', task.id!)).status).toBe('ready');
    await page.close();
  }, 90_000);
});
