import * as fs from 'node:fs';
import type { Browser } from 'playwright-core';
import request from 'supertest';
import type { Task } from '@medplum/fhirtypes';
import { clinicInstant } from '@kc/protocols';
import { DEV_ISSUER, enrolNamedPatient, launchChromium, score, signInOnPage } from './support/clinician';
import { startTestService, type TestService } from './support/test-service';

/**
 * A clinic in New York whose clinician's browser is set to Tokyo (a laptop back from a conference, say): the page shows
 * and picks the clinic's days and times, named as such, whatever the browser's zone; the clocks go forward on
 * 14 March 2027.
 */
describe("the clinician page in the clinic's time zone", () => {
  let service: TestService;
  let browser: Browser;
  beforeAll(async () => {
    service = await startTestService({
      oidc: DEV_ISSUER,
      clinicTimeZone: 'America/New_York',
    });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await service?.stop();
  });

  it("shows the clinic's due windows, named by its zone, and reschedules to the clinic's days across summer time", async () => {
    const enrolled = await enrolNamedPatient(
      service,
      'ketamine-low-dose-series',
      { given: 'Nora', family: 'Newyork', birthDate: '1979-05-05' },
      '2027-03-01',
    );
    // Scores as EHRs record them: a day alone, and an instant late in the clinic's evening (03:00 UTC the next day).
    await score(service, enrolled.patient, '72514-3', 6, '2026-11-10');
    await score(service, enrolled.patient, '44261-6', 9, '2026-11-11T03:00:00Z');
    const drafts = await service.fhir.searchAll<Task>('Task', { patient: enrolled.patient, status: 'draft' });
    const session = drafts.find((t) => t.focus?.reference?.startsWith('MedicationRequest/'))!;
    const instructions = drafts.find((t) => t !== session)!;
    const context = await browser.newContext({ timezoneId: 'Asia/Tokyo' });
    const page = await context.newPage();
    await signInOnPage(page, service);
    const row = page.locator(`tr[data-task-id="${session.id}"]`);
    await row.waitFor();
    expect(await page.textContent('#worklist th:nth-child(5)')).toBe('Due window (America/New_York)');
    expect(await page.textContent('#zone-note')).toBe("Days and times are the clinic's: America/New_York.");
    // Midnight 2 March (EST) to midnight 15 March (EDT): 2 to 14 March in the clinic, whole days (not UTC's 05:00 and
    // 04:00, nor Tokyo's evenings).
    expect(await row.locator('td.due').textContent()).toContain('2027-03-02 to 2027-03-14');
    expect(await row.locator('td.scores').textContent()).toBe('Pain NRS 6 (2026-11-10); PHQ-9 9 (2026-11-10)');
    // "Due from 2 March": the session, not the instructions, whose window ended at 2 March's midnight.
    const instructionsRow = page.locator(`tr[data-task-id="${instructions.id}"]`);
    await page.fill('#f-due-after', '2027-03-02');
    await page.click('#filters button[type=submit]');
    await instructionsRow.waitFor({ state: 'detached' });
    await row.waitFor();
    await page.fill('#f-due-after', '');
    await page.click('#filters button[type=submit]');
    await instructionsRow.waitFor();
    fs.mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/worklist-clinic-time-zone.png', fullPage: true });

    await row.locator('button:has-text("Reschedule")').click();
    await page.waitForSelector('#reschedule-dialog[open]');
    expect(await page.textContent('#reschedule-range')).toBe(
      'Allowed by the protocol: 2027-03-02 to 2027-03-14 (America/New_York)',
    );
    // The window's last day is Sunday 14 March, when the clocks go forward at 02:00. Chosen: Friday 12 to Saturday 13,
    // whole days in the clinic (to the midnight after the 13th), shown as such on the to-do list.
    expect(await page.getAttribute('#rs-end', 'max')).toBe('2027-03-14');
    await page.fill('#rs-start', '2027-03-12');
    await page.fill('#rs-end', '2027-03-13');
    await page.click('#reschedule-confirm');
    await row.waitFor({ state: 'detached' });
    expect(await page.textContent('#message')).toMatch(/^Rescheduled/);
    const rescheduled = await service.fhir.read<Task>('Task', session.id!);
    expect(rescheduled.restriction?.period).toEqual({
      start: '2027-03-12T05:00:00.000Z',
      end: '2027-03-14T05:00:00.000Z',
    });

    // The instructions approved for 10:00-15:00 on 1 March (through the API, as by a colleague): "Due until 1 March" on
    // the to-do list includes that whole day, not only what starts at its midnight; the session (12 March) is not.
    await request(service.url)
      .post(`/tasks/${instructions.id}/$reschedule`)
      .set(service.as('clinician'))
      .send({ versionId: instructions.meta!.versionId, start: '2027-03-01T15:00:00Z', end: '2027-03-01T20:00:00Z' })
      .expect(200);
    await page.click('#list-to-do');
    await row.waitFor();
    expect(await row.locator('td.due').textContent()).toContain('2027-03-12 to 2027-03-13');
    await page.fill('#f-due-before', '2027-03-01');
    await page.click('#filters button[type=submit]');
    await row.waitFor({ state: 'detached' });
    const shown = await page
      .locator('#worklist tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task-id')));
    expect(shown).toEqual([instructions.id]);

    // A zone whose clocks jump at midnight (Santiago, 5 September 2027: 00:00 does not exist): the page's days start
    // at their first instant, as the server's do (clinicInstant).
    const starts = await page.evaluate(
      "settings.timeZone = 'America/Santiago'; ['2027-09-04', '2027-09-05', '2027-09-06'].map((d) => new Date(dayStart(d)).toISOString())",
    );
    expect(starts).toEqual(['2027-09-04T04:00:00.000Z', '2027-09-05T04:00:00.000Z', '2027-09-06T03:00:00.000Z']);
    expect(
      ['2027-09-04', '2027-09-05', '2027-09-06'].map((d) => clinicInstant(d, 'America/Santiago')?.toISOString()),
    ).toEqual(starts);
    await context.close();
  }, 60_000);
});
