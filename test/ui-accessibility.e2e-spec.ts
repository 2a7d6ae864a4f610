import AxeBuilder from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import request from 'supertest';
import type { Procedure, Task } from '@medplum/fhirtypes';
import { FollowUpService } from '../apps/worker/src/followups/follow-up.service';
import { ContraindicationSweep } from '../apps/worker/src/maintenance/contraindication-sweep';
import { InfusionsInError } from '../apps/worker/src/maintenance/infusions-in-error';
import { WorklistIndex } from '@kc/worklist-index';
import { actionOf, completeInfusion } from './support/clinic';
import { chartedNamingNoPlan, DEV_ISSUER, enrolNamedPatient, launchChromium, signInOnPage } from './support/clinician';
import { startTestService, type TestService } from './support/test-service';
import { activeCondition, PREGNANCY } from './fixtures/patient-data';

/**
 * What the page is held to: WCAG 2.1 and 2.2 at levels A and AA, and axe-core's best practices (one main landmark,
 * everything inside landmarks, no empty table header, ...), as axe-core tests them.
 */
const RULES = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'];

/** What axe-core finds on the page as it is now: each rule broken, with the elements that break it. */
async function violations(page: Page): Promise<string[]> {
  const { violations: found } = await new AxeBuilder({ page }).withTags(RULES).analyze();
  return found.map(
    (v) => `${v.id} (${v.impact}): ${v.help} -- ${v.nodes.map((n) => `${n.target.join(' ')} ${n.html}`).join(', ')}`,
  );
}

/**
 * Every state a clinician meets on the page, checked by axe-core in a real browser: signed out, the sign-in page, the
 * worklist with each kind of row (an infusion with its dose, a check, one overdue, one held for a contraindication,
 * for an infusion charted naming no plan or one recorded in error; a refusal said), each dialog open with its input
 * refused, the to-do list and the patient view. Colour contrast, names of controls (the words on a button begin its
 * name: WCAG 2.5.3), labels, landmarks and ARIA are axe's to judge; keyboard use is `test/ui.e2e-spec.ts`'s.
 */
describe('clinician page accessibility (axe-core in a real browser)', () => {
  let service: TestService;
  let browser: Browser;
  let page: Page;
  let infused: { patient: string; check: Task; session: Task };
  let held: { patient: string; waiting: Task };
  let unlinked: Task;
  let inError: Task;
  let overdue: Task;

  /** A named patient infused on 2027-01-04: their post-infusion check and next session await approval. */
  async function infusedPatient(given: string, family: string) {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given,
      family,
      birthDate: '1980-02-02',
    });
    await service.app
      .get(FollowUpService)
      .handle(await completeInfusion(service, enrolled, '2027-01-04T10:00:00.000Z'));
    const tasks = await service.fhir.searchAll<Task>('Task', { patient: enrolled.patient, status: 'draft' });
    return {
      patient: enrolled.patient,
      check: tasks.find((t) => actionOf(t) === 'post-infusion-check')!,
      session: tasks.find((t) => actionOf(t) === 'next-induction-session')!,
    };
  }

  /** A named patient whose plan a pregnancy found by the sweep holds: their Tasks offer Override and Reject only. */
  async function heldPatient() {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Bea',
      family: 'Held',
      birthDate: '1985-03-03',
    });
    const [waiting] = await service.fhir.searchAll<Task>('Task', { patient: enrolled.patient, status: 'draft' });
    await service.fhir.create(activeCondition(PREGNANCY[0], PREGNANCY[1], enrolled.patient));
    await service.app.get(ContraindicationSweep).sweep();
    return { patient: enrolled.patient, waiting };
  }

  /**
   * A named patient whose approved first session the EHR charted as given naming no plan (no pump record): a Task of
   * theirs offers Link to the plan, and Not a session of this plan.
   */
  async function unlinkedPatient(): Promise<Task> {
    const enrolled = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Nell',
      family: 'Unlinked',
      birthDate: '1979-05-05',
    });
    const drafts = await service.fhir.searchAll<Task>('Task', { patient: enrolled.patient, status: 'draft' });
    const session = drafts.find((t) => t.focus?.reference?.startsWith('MedicationRequest/'))!;
    await request(service.url)
      .post(`/tasks/${session.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: session.meta!.versionId })
      .expect(200);
    await service.app.get(FollowUpService).handle(await chartedNamingNoPlan(service, enrolled.patient, session));
    await service.app.get(ContraindicationSweep).recheckFor(`CarePlan/${enrolled.carePlanId}`);
    return drafts.find((t) => t.id !== session.id)!;
  }

  /** A named patient whose infusion was recorded in error after its follow-ups: Plan again without it, or by hand. */
  async function inErrorPatient(): Promise<Task> {
    const { session } = await infusedPatient('Ines', 'Wrongchart');
    const procedure = session.reasonReference!.reference!.split('/')[1];
    const charted = await service.fhir.read<Procedure>('Procedure', procedure);
    await service.fhir.update<Procedure>({ ...charted, status: 'entered-in-error' });
    await service.app.get(InfusionsInError).heard(procedure);
    return session;
  }

  /** A named patient whose check's window the EHR moved into the past: its row is marked overdue. */
  async function overduePatient(): Promise<Task> {
    const { check } = await infusedPatient('Otto', 'Overdue');
    await service.fhir.update<Task>({
      ...check,
      restriction: { ...check.restriction, period: { start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' } },
    });
    // Written straight to the FHIR server: the worklist's read model sees it at its reconciliation.
    await service.app.get(WorklistIndex).rebuild();
    return check;
  }

  beforeAll(async () => {
    service = await startTestService({ oidc: DEV_ISSUER });
    browser = await launchChromium();
    infused = await infusedPatient('Ada', 'Axe');
    held = await heldPatient();
    unlinked = await unlinkedPatient();
    inError = await inErrorPatient();
    overdue = await overduePatient();
  }, 120_000);
  beforeEach(async () => {
    // AxeBuilder needs a page of a browser context of its own.
    page = await (await browser.newContext()).newPage();
  });
  afterEach(async () => {
    await page?.context().close();
  });
  afterAll(async () => {
    await browser?.close();
    await service?.stop();
  });

  it('signed out, and the sign-in page', async () => {
    await page.goto(`${service.url}/ui`);
    await page.waitForSelector('#sign-in:not([hidden])');
    expect(await violations(page)).toEqual([]);
    await page.click('#sign-in');
    await page.waitForURL(/\/dev-issuer\/authorize/);
    expect(await violations(page)).toEqual([]);
  }, 60_000);

  it('the worklist with every kind of row, and a refusal said', async () => {
    await signInOnPage(page, service);
    for (const task of [infused.check, infused.session, held.waiting, unlinked, inError, overdue])
      await page.waitForSelector(`tr[data-task-id="${task.id}"]`);
    expect(await page.locator(`tr[data-task-id="${overdue.id}"]`).getAttribute('class')).toMatch(/is-overdue/);
    expect(await page.locator(`tr[data-task-id="${held.waiting.id}"] button:has-text("Override")`).count()).toBe(1);
    expect(await page.locator(`tr[data-task-id="${unlinked.id}"] button:has-text("Link to")`).count()).toBe(1);
    expect(await page.locator(`tr[data-task-id="${inError.id}"] button:has-text("Plan again")`).count()).toBe(1);
    await page.screenshot({ path: 'test-results/worklist-every-kind.png', fullPage: true });
    expect(await violations(page)).toEqual([]);

    // A refusal said: a Task the EHR changed after the page read it is refused (409) when approved there.
    const stale = await enrolNamedPatient(service, 'ketamine-low-dose-series', {
      given: 'Cy',
      family: 'Stale',
      birthDate: '1970-04-04',
    });
    const [first] = await service.fhir.searchAll<Task>('Task', { patient: stale.patient, status: 'draft' });
    await page.click('#filters button[type=submit]');
    await page.waitForSelector(`tr[data-task-id="${first.id}"]`);
    await service.fhir.update<Task>({ ...first, description: 'Changed in the EHR meanwhile' });
    await page.click(`tr[data-task-id="${first.id}"] button:has-text("Approve")`);
    if (await page.locator('#approve-dialog[open]').isVisible()) await page.click('#approve-confirm');
    await page.waitForSelector('#message.error');
    expect(await violations(page)).toEqual([]);
  }, 60_000);

  it('each dialog open, its input refused', async () => {
    await signInOnPage(page, service);
    const row = (task: Task) => `tr[data-task-id="${task.id}"]`;
    await page.waitForSelector(row(infused.session));

    await page.click(`${row(infused.session)} button:has-text("Approve")`);
    await page.waitForSelector('#approve-dialog[open]');
    await page.fill('#approve-rate', '');
    await page.click('#approve-confirm');
    expect(await page.getAttribute('#approve-rate', 'aria-invalid')).toBe('true');
    expect(await violations(page)).toEqual([]);
    await page.click('#approve-cancel');

    await page.click(`${row(infused.session)} button:has-text("Reject")`);
    await page.waitForSelector('#reject-dialog[open]');
    await page.click('#reject-confirm');
    expect(await page.getAttribute('#reject-reason', 'aria-invalid')).toBe('true');
    expect(await violations(page)).toEqual([]);
    await page.click('#reject-cancel');

    await page.click(`${row(infused.session)} button:has-text("Reschedule")`);
    await page.waitForSelector('#reschedule-dialog[open]');
    await page.fill('#rs-start', '2026-01-01');
    await page.click('#reschedule-confirm');
    expect(await page.getAttribute('#rs-start', 'aria-invalid')).toBe('true');
    expect(await violations(page)).toEqual([]);
    await page.click('#reschedule-cancel');

    await page.click(`${row(infused.check)} button:has-text("Record check")`);
    await page.waitForSelector('#check-dialog[open]');
    await page.fill('#q-pain-now', '12');
    await page.click('#check-confirm');
    await page.locator('#check-error:not(:empty)').waitFor();
    expect(await violations(page)).toEqual([]);
    await page.click('#check-cancel');

    await page.click(`${row(held.waiting)} button:has-text("Override")`);
    await page.waitForSelector('#override-dialog[open]');
    await page.click('#override-confirm');
    await page.locator('#override-error:not(:empty)').waitFor();
    expect(await violations(page)).toEqual([]);
    await page.click('#override-cancel');

    await page.click(`${row(unlinked)} button:has-text("Link to")`);
    await page.waitForSelector('#link-dialog[open]');
    expect(await violations(page)).toEqual([]);
    await page.click('#link-cancel');

    await page.click(`${row(inError)} button:has-text("Plan again")`);
    await page.waitForSelector('#replan-dialog[open]');
    await page.click('#replan-confirm');
    await page.locator('#replan-error:not(:empty)').waitFor();
    expect(await violations(page)).toEqual([]);
    await page.click('#replan-cancel');
  }, 90_000);

  it('on a screen 320 CSS pixels wide (WCAG 1.4.10, reflow) only the table scrolls sideways, in a region of its own', async () => {
    await page.setViewportSize({ width: 320, height: 800 });
    await signInOnPage(page, service);
    await page.waitForSelector(`tr[data-task-id="${infused.check.id}"]`);
    // Evaluated in the page (this file is compiled without the DOM's types).
    const widths = () =>
      page.evaluate<{ page: number; table: number; region: number }>(
        `({
          page: document.documentElement.scrollWidth,
          table: document.querySelector('.table-scroll').scrollWidth,
          region: document.querySelector('.table-scroll').clientWidth,
        })`,
      );
    const { page: pageWidth, table, region } = await widths();
    expect(pageWidth).toBeLessThanOrEqual(320);
    expect(table).toBeGreaterThan(region);
    await page.screenshot({ path: 'test-results/worklist-320px.png', fullPage: true });
    // The region scrolls by keyboard too (it takes the focus).
    await page.focus('.table-scroll');
    await page.keyboard.press('ArrowRight');
    const scrolled = () => page.evaluate<number>(`document.querySelector('.table-scroll').scrollLeft`);
    // Scrolling may be smooth: wait for it to move (a string waitForFunction is refused by the page's CSP).
    for (let i = 0; i < 40 && !(await scrolled()); i++) await page.waitForTimeout(50);
    expect(await scrolled()).toBeGreaterThan(0);
    expect(await violations(page)).toEqual([]);

    await page.locator(`tr[data-task-id="${infused.check.id}"] .patient-link`).click();
    await page.waitForSelector('#patient-view:not([hidden]) #timeline li');
    expect((await widths()).page).toBeLessThanOrEqual(320);
    await page.screenshot({ path: 'test-results/patient-view-320px.png', fullPage: true });
  }, 60_000);

  it('the to-do list', async () => {
    await request(service.url)
      .post(`/tasks/${infused.session.id}/$approve`)
      .set(service.as('clinician'))
      .send({ versionId: (await service.fhir.read<Task>('Task', infused.session.id!)).meta!.versionId })
      .expect(200);
    await signInOnPage(page, service);
    await page.click('#list-to-do');
    await page.waitForSelector(`tr[data-task-id="${infused.session.id}"]`);
    expect(await violations(page)).toEqual([]);
  }, 60_000);

  it('the patient view: plans, scores and a timeline with a contraindication to override', async () => {
    await signInOnPage(page, service);
    for (const task of [infused.check, held.waiting, unlinked, inError]) {
      await page.locator(`tr[data-task-id="${task.id}"] .patient-link`).click();
      await page.waitForSelector('#patient-view:not([hidden]) #timeline li');
      expect(await violations(page)).toEqual([]);
      await page.click('#back');
      await page.waitForSelector('#worklist:not([hidden])');
    }
  }, 60_000);
});
